# Change-freeze windows: no real write lands in a frozen environment, approved or not.
package opsgate

import rego.v1

active_freezes contains w if {
	some w in object.get(config, "freeze_windows", [])
	some env in w.environments
	env in {environment, "*"}
	time.parse_rfc3339_ns(w.start) <= now_ns
	now_ns < time.parse_rfc3339_ns(w.end)
}

real_write_denials contains deny(55, "write.freeze", sprintf("%v is in a change freeze until %v: %v", [environment, w.end, w.reason]), "call again with dry_run=true, or wait until the freeze ends") if {
	real_write
	some w in active_freezes
}
