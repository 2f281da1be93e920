# Writes: graded autonomy (read-only, advised, approved, autonomous).
package opsgate

import rego.v1

# Positive evidence for a grant: this is a write and every write check passed.
write_checks_passed if {
	is_write
	_write_scope_verdict == "pass"
	_read_only_verdict == "pass"
	_advised_verdict == "pass"
	_freeze_verdict == "pass"
	_interval_verdict == "pass"
	_target_1h_verdict == "pass"
	_global_1m_verdict == "pass"
}

unevaluated contains "write.oauth_scope_missing" if {
	is_write
	not _write_scope_verdict
}

unevaluated contains "write.read_only" if {
	is_write
	not _read_only_verdict
}

unevaluated contains "write.advised.dry_run_only" if {
	is_write
	not _advised_verdict
}

# Confirmation (a click in the client) is enough for dry runs and outside production, never for a
# production write (nor for anything but a write).
confirmation_ok := false if {
	not is_write
} else := true if {
	dry_run
} else := true if {
	not production
} else := false

# OAuth scopes. A token from the OIDC issuer must carry the write scope the deployment names
# (context.write_scope, from [http] write_scope) to call a write tool, dry runs included. API keys
# and stdio callers carry roles, not scopes: their writes are judged by the rules below. An unknown
# kind of caller has no verdict, so it is denied.
write_scope := object.get(_context, "write_scope", null) if is_object(_context)

caller_scopes := {s | some s in input.caller.scopes; is_string(s)} if is_array(input.caller.scopes)

_write_scope_verdict := "pass" if {
	input.caller.auth in {"api_key", "local"}
} else := "pass" if {
	input.caller.auth == "oidc"
	write_scope == null
} else := "pass" if {
	input.caller.auth == "oidc"
	is_string(write_scope)
	write_scope in caller_scopes
} else := "deny" if {
	input.caller.auth == "oidc"
	is_string(write_scope)
	is_array(input.caller.scopes)
	not write_scope in caller_scopes
}

write_denials contains deny(30, "write.oauth_scope_missing", sprintf("%v is a write tool and needs the OAuth scope %v; the caller's token has %v", [tool_name, write_scope, quoted_list(sort(caller_scopes))]), sprintf("use the read tools, or sign in again asking for the %v scope", [write_scope])) if {
	_write_scope_verdict == "deny"
}

# The verdicts' branches exclude each other; the common one comes first.
_read_only_verdict := "pass" if {
	autonomy in {"advised", "approved", "autonomous"}
} else := "deny" if {
	autonomy == "read-only"
}

_advised_verdict := "pass" if {
	dry_run
} else := "pass" if {
	autonomy in {"read-only", "approved", "autonomous"}
} else := "deny" if {
	autonomy == "advised"
}

write_denials contains deny(50, "write.read_only", sprintf("%v changes the system and autonomy is read-only", [tool_name]), "use the read tools; a human can make this change") if {
	_read_only_verdict == "deny"
}

write_denials contains d if {
	real_write
	some d in real_write_denials
}

real_write_denials contains deny(70, "write.advised.dry_run_only", sprintf("autonomy is advised: %v may only run as a dry run", [tool_name]), "call again with dry_run=true") if {
	_advised_verdict == "deny"
}

write_grants contains grant(110, "write.dry_run.allowed", sprintf("%v is a dry run; it changes nothing", [input.tool]), true) if {
	is_write
	is_string(input.tool)
	dry_run
	authenticated
	autonomy in {"advised", "approved", "autonomous"}
}

write_grants contains grant(130, "write.autonomous.allowed", sprintf("autonomy is autonomous and %v is within its budgets", [input.tool]), false) if {
	real_write
	is_string(input.tool)
	authenticated
	autonomy == "autonomous"
}
