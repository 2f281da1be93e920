package opsgate_test

import rego.v1

in_freeze(doc) := object.union(doc, {"context": object.union(doc.context, {"now": "2026-12-25T10:00:00Z"})})

test_freeze_denies_approved_prod_write_naming_reason if {
	d := data.opsgate.decision with input as in_freeze(object.union(prod_write, {"approval": sre_grant}))
	d.allow == false
	d.rule == "write.freeze"
	contains(d.reasons[0], "year-end change freeze")
}

test_freeze_allows_dry_runs if {
	d := data.opsgate.decision with input as in_freeze(rollback_input("prod", true))
	d.allow == true
}

test_freeze_does_not_touch_other_environments if {
	d := data.opsgate.decision with input as with_autonomy(in_freeze(rollback_input("staging", false)), "autonomous")
	d.allow == true
}

test_freeze_end_is_exclusive if {
	doc := object.union(prod_write, {"approval": sre_grant, "context": object.union(prod_write.context, {"now": "2026-12-27T00:00:00Z"})})
	d := data.opsgate.decision with input as doc
	d.allow == true
}

test_freeze_windows_come_from_data if {
	windows := [{"start": "2026-11-23T00:00:00Z", "end": "2026-11-24T00:00:00Z", "environments": ["*"], "reason": "black friday"}]
	d := data.opsgate.decision with input as with_autonomy(rollback_input("staging", false), "autonomous") with data.opsgate_config.freeze_windows as windows
	d.rule == "write.freeze"
	contains(d.reasons[0], "black friday")
}

# Fail closed: a window the rules cannot evaluate denies every real write (the schema refuses such data
# at load; this is for data that reaches OPA some other way).
test_freeze_window_with_plain_dates_denies_real_writes if {
	windows := [{"start": "2026-11-01", "end": "2026-12-31", "environments": ["prod"], "reason": "november"}]
	d := data.opsgate.decision with input as with_autonomy(prod_write, "autonomous") with data.opsgate_config.freeze_windows as windows
	d.allow == false
	d.rule == "policy.check_failed"
	contains(d.reasons[0], "write.freeze")
}

test_freeze_window_without_zone_denies_even_in_other_environments if {
	windows := [{"start": "2026-11-01T00:00:00", "end": "2026-12-31T00:00:00", "environments": ["dev"], "reason": "x"}]
	d := data.opsgate.decision with input as with_autonomy(prod_write, "autonomous") with data.opsgate_config.freeze_windows as windows
	d.allow == false
}

test_unparseable_now_denies_real_writes if {
	doc := object.union(with_autonomy(prod_write, "autonomous"), {"context": object.union(with_autonomy(prod_write, "autonomous").context, {"now": "2026-11-23"})})
	d := data.opsgate.decision with input as doc
	d.allow == false
}

test_broken_freeze_window_does_not_stop_dry_runs if {
	windows := [{"start": "2026-11-01", "end": "2026-12-31", "environments": ["prod"], "reason": "november"}]
	d := data.opsgate.decision with input as rollback_input("prod", true) with data.opsgate_config.freeze_windows as windows
	d.allow == true
}
