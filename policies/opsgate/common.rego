# Shared facts about the call that every rule file reads.
#
# Facts are computed in helper rules and stay undefined when they cannot be computed (malformed input,
# data the rules cannot read, a builtin that errors). Checks never pass on `not <fact>`: see the
# verdicts in decision.rego.
package opsgate

import rego.v1

config := data.opsgate_config

authenticated if input.caller.authenticated == true

_context := object.get(input, "context", {})

autonomy := object.get(ctx, "autonomy", config.default_autonomy) if {
	ctx := object.get(input, "context", {})
	is_object(ctx)
}

is_read if input.scope == "read"

is_write if input.scope == "write"

# Anything but an explicit `dry_run: true` is a real write.
dry_run if input.args.dry_run == true

real_write if {
	is_write
	not dry_run
}

# Undefined when the target is malformed: checks that need it then have no verdict.
environment := env if {
	target := object.get(input, "target", {})
	is_object(target)
	env := object.get(target, "environment", "")
	is_string(env)
}

production if environment in config.production_environments

# An unknown environment is not known to be safe, so it counts as production.
production if environment == ""

production if not is_string(environment)

caller_roles := {r | some r in object.get(input.caller, "roles", [])} if is_object(input.caller)

approver_roles := {r | some r in config.approver_roles}

has_approval if is_object(input.approval)

# A time as RFC 3339 with a zone, in ns. Malformed times (not a string, a plain date, no `T`, no zone)
# are undefined here rather than a builtin error, so every engine treats them alike (a cheap shape check
# before parsing: a regex would cost a compile per call).
parse_time_ns(ts) := time.parse_rfc3339_ns(ts) if {
	is_string(ts)
	count(ts) >= 20
	substring(ts, 10, 1) == "T"
	endswith(ts, "Z")
} else := time.parse_rfc3339_ns(ts) if {
	is_string(ts)
	count(ts) >= 20
	substring(ts, 10, 1) == "T"
	substring(ts, count(ts) - 6, 1) in {"+", "-"}
}

now_ns := parse_time_ns(input.context.now)

now_ns := time.now_ns() if not input.context.now

max_items := object.get(object.get(config, "max_items_by_tool", {}), input.tool, config.max_items)
