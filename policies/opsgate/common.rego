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

# An unknown environment is not known to be safe, so it counts as production: an empty one, and one that
# is missing or not a string (environment undefined). `not` applies to a rule, never to a builtin call
# over a value that may be undefined: OPA takes `not is_string(<undefined>)` as undefined, regorus as true.
production if environment == ""

production if not _environment_known

_environment_known if is_string(environment)

# Roles are strings; anything else in the list grants nothing (and a string or number in place of the
# list has nothing to iterate on OPA and on regorus's VM; the interpreter errors).
caller_roles := {r | some r in object.get(input.caller, "roles", []); is_string(r)} if is_object(input.caller)

# A value from the input as reasons show it, the same on every engine. Strings as they are; numbers as
# both print them (integers below 10^15, fractions between 10^-4 and 10^6; others rounded, since OPA
# prints 1234567.5 as 1.2345675e+06 and regorus as 1234567.5); anything else by its type only.
show(x) := x if {
	is_string(x)
} else := sprintf("%v", [x + 0]) if { # + 0: regorus prints -0.0 as -0, OPA as 0
	is_number(x)
	abs(x) < 1000000000000000
	x == floor(x)
} else := sprintf("%v", [x]) if {
	is_number(x)
	abs(x) >= 0.0001
	abs(x) < 1000000
} else := sprintf("%v", [round(x)]) if {
	is_number(x)
	abs(x) < 1000000000000000
} else := "a number of 16 digits or more" if {
	is_number(x)
} else := sprintf("(%v)", [type_name(x)])

# show(x) in double quotes when x is a string (as %q, which regorus refuses for anything but a string).
quoted(x) := sprintf("%q", [x]) if is_string(x)
else := show(x)

# A list as %v prints it on OPA, each item quoted(); regorus's %v of a list escapes characters such as
# control codes and U+2028 otherwise (\u0001 where OPA writes \x01), while both write %q alike.
quoted_list(xs) := concat("", ["[", concat(", ", [quoted(x) | some x in xs]), "]"])

# The tool as reasons name it.
tool_name := input.tool if {
	is_string(input.tool)
} else := show(object.get(input, "tool", "(no tool)"))

approver_roles := {r | some r in config.approver_roles; is_string(r)}

has_approval if is_object(input.approval)

# A time as RFC 3339 with a zone, in ns; undefined (never a builtin error) for anything else. Only what
# OPA (Go) and regorus (chrono) both parse, to the same instant, passes: a real date from 1678 to 2261
# (the nanosecond range), `T`, a time with seconds below 60, an optional fraction, and `Z` or an offset
# below 24 h. Go alone takes a one-digit hour or a +24:00 offset, chrono alone a leap second; a time
# either refuses is an error on OPA under strict builtin errors.
#
# A regex match costs about 5 us on regorus (it caches the compiled pattern; the match itself is slow),
# so the shapes the gate and the policy data use (whole seconds or milliseconds, in UTC) are checked
# field by field first (digits where digits go, then each field's range); other shapes, and February 29,
# go to the regex.
parse_time_ns(ts) := time.parse_rfc3339_ns(ts) if {
	is_string(ts)
	strings.replace_n({"1": "0", "2": "0", "3": "0", "4": "0", "5": "0", "6": "0", "7": "0", "8": "0", "9": "0"}, ts) in {"0000-00-00T00:00:00Z", "0000-00-00T00:00:00.000Z"}
	ts >= "1678"
	ts < "2262"
	day := substring(ts, 8, 2)
	day >= "01"
	# at most the month's last day (February 29 goes to the regex); a month that is not one has none
	day <= {
		"01": "31", "02": "28", "03": "31", "04": "30", "05": "31", "06": "30",
		"07": "31", "08": "31", "09": "30", "10": "31", "11": "30", "12": "31",
	}[substring(ts, 5, 2)]
	substring(ts, 11, 2) <= "23"
	substring(ts, 14, 1) <= "5"
	substring(ts, 17, 1) <= "5"
} else := time.parse_rfc3339_ns(ts) if {
	is_string(ts)
	regex.match(rfc3339_pattern, ts)
}

rfc3339_pattern := `^(?:(?:16(?:7[89]|[89][0-9])|1[7-9][0-9][0-9]|2[01][0-9][0-9]|22[0-5][0-9]|226[01])-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))|(?:16(?:8[048]|9[26])|(?:1[7-9]|2[0-2])(?:0[48]|[2468][048]|[13579][26])|2000)-02-29)T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$`

now_ns := parse_time_ns(input.context.now)

now_ns := time.now_ns() if not input.context.now

# The tool is checked before object.get sees it: given an undefined argument, a builtin on regorus's VM
# skips the rule's else branches, where OPA takes the next one. (object.get with a path answers the
# default when max_items_by_tool is not an object; with a key, OPA errors on such a first argument.)
max_items := object.get(config, ["max_items_by_tool", input.tool], config.max_items) if {
	input.tool
} else := config.max_items
