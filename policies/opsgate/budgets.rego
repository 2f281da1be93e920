# Write budgets: per target (an interval between writes, a count per hour) and across targets (a count
# per minute), per tool from data.opsgate_config.budgets (`default` for tools not named).
#
# This data is the one place budgets are configured. The counts come from the gate (context.recent);
# a real write over budget is denied here with its reason, and an allowed real write carries its
# budget in obligations.budget, against which the gate reserves the write before it runs.
#
# A real write whose counts or budget are missing or not numbers cannot be checked, so it is denied
# (policy.check_failed), never waved through.
package opsgate

import rego.v1

unevaluated contains "write.budget.target_interval" if {
	is_write
	not _interval_verdict
}

unevaluated contains "write.budget.target_1h" if {
	is_write
	not _target_1h_verdict
}

unevaluated contains "write.budget.global_1m" if {
	is_write
	not _global_1m_verdict
}

# A tool that is not a name has no budget (and the budget checks no verdict).
budget := object.get(config.budgets, input.tool, config.budgets["default"]) if is_string(input.tool)

recent := input.context.recent[input.tool]

# The budget an allowed real write is reserved against (null for reads and dry runs).
write_budget := null if {
	not real_write
} else := b if {
	is_number(budget.target_interval_s)
	is_number(budget.target_1h)
	is_number(budget.global_1m)
	b := {
		"target_interval_s": budget.target_interval_s,
		"target_1h": budget.target_1h,
		"global_1m": budget.global_1m,
	}
} else := null

_target_1h_verdict := _budget_verdict("target_1h")

_global_1m_verdict := _budget_verdict("global_1m")

# The verdicts' branches exclude each other; the common one comes first.
_budget_verdict(key) := "pass" if {
	dry_run
} else := "pass" if {
	is_number(recent[key])
	is_number(budget[key])
	recent[key] < budget[key]
} else := "deny" if {
	is_number(recent[key])
	is_number(budget[key])
	recent[key] >= budget[key]
}

# target_last_s: seconds since this tool last wrote to this target, null when not within the hour.
_interval_verdict := "pass" if {
	dry_run
} else := "pass" if {
	is_null(recent.target_last_s)
	is_number(budget.target_interval_s)
} else := "pass" if {
	is_number(recent.target_last_s)
	is_number(budget.target_interval_s)
	recent.target_last_s >= budget.target_interval_s
} else := "deny" if {
	is_number(recent.target_last_s)
	is_number(budget.target_interval_s)
	recent.target_last_s < budget.target_interval_s
}

real_write_denials contains deny(59, "write.budget.target_interval", sprintf("%v ran on this target %v s ago; the budget allows one every %v s", [tool_name, _rounded(recent.target_last_s), show(budget.target_interval_s)]), sprintf("wait %v s, or escalate to a human", [_ceiled(budget.target_interval_s - recent.target_last_s)])) if {
	_interval_verdict == "deny"
}

real_write_denials contains deny(60, "write.budget.target_1h", sprintf("%v already ran %v times on this target in the last hour (budget %v)", [tool_name, show(recent.target_1h), show(budget.target_1h)]), "escalate to a human; the budget resets within the hour") if {
	_target_1h_verdict == "deny"
}

real_write_denials contains deny(61, "write.budget.global_1m", sprintf("%v ran %v times in the last minute across all targets (budget %v)", [tool_name, show(recent.global_1m), show(budget.global_1m)]), "wait a minute before the next change") if {
	_global_1m_verdict == "deny"
}

# Seconds as a reason shows them, rounded (round and ceil take only numbers that fit an integer on regorus).
_rounded(x) := show(round(x)) if {
	abs(x) < 1000000000000000
} else := show(x)

_ceiled(x) := show(ceil(x)) if {
	abs(x) < 1000000000000000
} else := show(x)
