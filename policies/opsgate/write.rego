# Writes: graded autonomy (read-only, advised, approved, autonomous).
package opsgate

import rego.v1

# Confirmation (a click in the client) is enough for dry runs and outside production, never for a
# production write.
confirmation_ok if {
	is_write
	dry_run
}

confirmation_ok if {
	is_write
	not production
}

default confirmation_ok := false

write_denials contains deny(50, "write.read_only", sprintf("%v changes the system and autonomy is read-only", [input.tool]), "use the read tools; a human can make this change") if {
	is_write
	autonomy == "read-only"
}

write_denials contains d if {
	real_write
	some d in real_write_denials
}

real_write_denials contains deny(70, "write.advised.dry_run_only", sprintf("autonomy is advised: %v may only run as a dry run", [input.tool]), "call again with dry_run=true") if {
	real_write
	autonomy == "advised"
}

write_grants contains grant(110, "write.dry_run.allowed", sprintf("%v is a dry run; it changes nothing", [input.tool]), true) if {
	is_write
	dry_run
	authenticated
	autonomy in {"advised", "approved", "autonomous"}
}

write_grants contains grant(130, "write.autonomous.allowed", sprintf("autonomy is autonomous and %v is within its budgets", [input.tool]), false) if {
	real_write
	authenticated
	autonomy == "autonomous"
}
