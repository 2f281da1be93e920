"""The triage capability: `incident_triage`, ranked suspects with supporting and contradicting evidence.

It reads the other capabilities only through the sources declared in `opsgate.triage.sources`.
"""
