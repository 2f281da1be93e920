# Shared facts about the call that every rule file reads.
package opsgate

import rego.v1

config := data.opsgate_config

authenticated if input.caller.authenticated == true

known_autonomy := {"read-only", "advised", "approved", "autonomous"}

autonomy := object.get(object.get(input, "context", {}), "autonomy", config.default_autonomy)

is_read if input.scope == "read"

is_write if input.scope == "write"

dry_run if input.args.dry_run == true

real_write if {
	is_write
	not dry_run
}

environment := object.get(object.get(input, "target", {}), "environment", "")

production if environment in config.production_environments

# An unknown environment is not known to be safe, so it counts as production.
production if environment == ""

caller_roles := {r | some r in object.get(input.caller, "roles", [])}

approver_roles := {r | some r in config.approver_roles}

has_approval if is_object(input.approval)

now_ns := time.parse_rfc3339_ns(input.context.now)

now_ns := time.now_ns() if not input.context.now

max_items := object.get(object.get(config, "max_items_by_tool", {}), input.tool, config.max_items)
