# Audit: the OCSF emitter library, occfs-auditd and occfs-audit.
