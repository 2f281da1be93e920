# Per-target and global budgets for real writes (counts come from the gate in context.recent).
package opsgate

import rego.v1

budget := object.get(config.budgets, input.tool, config.budgets["default"])

recent := object.get(object.get(object.get(input, "context", {}), "recent", {}), input.tool, {})

recent_target_1h := object.get(recent, "target_1h", 0)

recent_global_1m := object.get(recent, "global_1m", 0)

real_write_denials contains deny(60, "write.budget.target_1h", sprintf("%v already ran %v times on this target in the last hour (budget %v)", [input.tool, recent_target_1h, budget.target_1h]), "escalate to a human; the budget resets within the hour") if {
	real_write
	recent_target_1h >= budget.target_1h
}

real_write_denials contains deny(61, "write.budget.global_1m", sprintf("%v ran %v times in the last minute across all targets (budget %v)", [input.tool, recent_global_1m, budget.global_1m]), "wait a minute before the next change") if {
	real_write
	recent_global_1m >= budget.global_1m
}
