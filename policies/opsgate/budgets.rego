# Per-target and global budgets for real writes (counts come from the gate in context.recent).
#
# A real write whose counts or budget are missing or not numbers cannot be checked, so it is denied
# (policy.check_failed), never waved through.
package opsgate

import rego.v1

verdicts contains ["write.budget.target_1h", _budget_verdict("target_1h")] if is_write

verdicts contains ["write.budget.global_1m", _budget_verdict("global_1m")] if is_write

budget := object.get(config.budgets, input.tool, config.budgets["default"])

recent := input.context.recent[input.tool]

recent_target_1h := recent.target_1h

recent_global_1m := recent.global_1m

_budget_verdict(key) := "pass" if {
	dry_run
} else := "deny" if {
	is_number(recent[key])
	is_number(budget[key])
	recent[key] >= budget[key]
} else := "pass" if {
	is_number(recent[key])
	is_number(budget[key])
	recent[key] < budget[key]
}

real_write_denials contains deny(60, "write.budget.target_1h", sprintf("%v already ran %v times on this target in the last hour (budget %v)", [input.tool, recent_target_1h, budget.target_1h]), "escalate to a human; the budget resets within the hour") if {
	verdict["write.budget.target_1h"] == "deny"
}

real_write_denials contains deny(61, "write.budget.global_1m", sprintf("%v ran %v times in the last minute across all targets (budget %v)", [input.tool, recent_global_1m, budget.global_1m]), "wait a minute before the next change") if {
	verdict["write.budget.global_1m"] == "deny"
}
