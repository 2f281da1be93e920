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
