package opsgate_test

import rego.v1

silence_input(env, dry, duration_s, everything) := {
	"tool": "alert_silence",
	"capability": "alerts",
	"scope": "write",
	"risk": "low",
	"args": {"matchers": [{"name": "alertname", "value": "CheckoutHighLatency", "op": "="}], "duration": "1h", "comment": "known, rolling back", "dry_run": dry},
	"target": {"environment": env, "namespace": "shop", "service": null},
	"facts": {"duration_s": duration_s, "matches_everything": everything, "alerts_matched": 1},
	"caller": {"subject": "agent@test", "roles": ["responder"], "client": "test", "authenticated": true, "auth": "local", "scopes": []},
	"context": {"now": "2026-11-23T05:00:00Z", "autonomy": "approved", "recent": {"alert_silence": {"target_1h": 0, "global_1m": 0, "target_last_s": null}}},
}

test_silence_dry_run_is_allowed if {
	d := data.opsgate.decision with input as silence_input("prod", true, 3600, false)
	d.allow == true
}

test_silence_outside_production_accepts_a_confirmation if {
	doc := object.union(silence_input("staging", false, 3600, false), {"approval": {"id": "apr_00000000000000000001", "kind": "confirmation", "channel": "confirmation", "granted_by": "client", "roles": []}})
	d := data.opsgate.decision with input as doc
	d.allow == true
}

test_silence_in_production_needs_an_approval if {
	d := data.opsgate.decision with input as silence_input("prod", false, 3600, false)
	d.allow == false
	d.require_approval == true
	d.rule == "write.prod.requires_approval"
}

test_silence_longer_than_the_policy_maximum_is_denied if {
	d := data.opsgate.decision with input as silence_input("prod", true, 7201, false)
	d.allow == false
	d.rule == "alerts.silence.too_long"
	contains(d.reasons[0], "7201")
	d.alternative == "use a duration of at most 120 minutes"
}

test_outside_production_the_maximum_is_larger if {
	d := data.opsgate.decision with input as silence_input("staging", true, 14400, false)
	d.allow == true
	e := data.opsgate.decision with input as silence_input("staging", true, 14401, false)
	e.rule == "alerts.silence.too_long"
}

test_silence_matching_everything_is_denied if {
	d := data.opsgate.decision with input as silence_input("staging", true, 600, true)
	d.allow == false
	d.rule == "alerts.silence.matches_everything"
}

test_silence_without_facts_fails_closed if {
	d := data.opsgate.decision with input as object.remove(silence_input("staging", true, 600, false), ["facts"])
	d.allow == false
	d.rule == "alerts.silence.too_long"
}

test_silence_with_a_malformed_duration_fact_fails_closed if {
	d := data.opsgate.decision with input as silence_input("staging", true, "600", false)
	d.allow == false
}
