"""One message lifecycle: the states of a leg and their precedence (states), the append-only
events that move them (events), and the chart's view of a record derived from them (projection).
"""
