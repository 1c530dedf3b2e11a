"""The pipeline, one routine each: decide (reads only), write (one transaction), deliver (the
same inline and in the worker), and the record factory they share (records).
"""
