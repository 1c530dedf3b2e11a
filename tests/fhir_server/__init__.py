"""The test FHIR server (Medplum behind shim.cjs) and its Python handle."""
