//! Hand-computed cases for the segment language, and round-trip properties.

use proptest::prelude::*;

use super::*;

/// Features from `(feature, value)` pairs; the others are absent.
fn with(values: &[(Feature, Value)]) -> impl Fn(Feature) -> Option<Value> + '_ {
    move |f| values.iter().find(|(g, _)| *g == f).map(|(_, v)| *v)
}

fn int(n: i128) -> Value {
    Value::int(n)
}

/// Whether default segment `name` holds for `values`.
fn holds(name: &str, values: &[(Feature, Value)]) -> bool {
    let defaults = Definitions::defaults();
    assert!(
        defaults.names().any(|n| n == name),
        "no default segment {name}"
    );
    defaults.matching(&with(values)).contains(&name)
}

fn one(expr: &str) -> Expr {
    let defs = Definitions::parse("t", &format!("x = {expr}")).unwrap_or_else(|e| panic!("{e}"));
    defs.segments[0].1.clone()
}

fn error(text: &str) -> String {
    Definitions::parse("segments.txt", text)
        .expect_err(text)
        .to_string()
}

#[test]
fn defaults_parse_in_file_order() {
    let defaults = Definitions::defaults();
    let names: Vec<&str> = defaults.names().collect();
    let expected = [
        "usage:data_heavy",
        "usage:voice_heavy",
        "usage:sms_heavy",
        "usage:dormant",
        "spend:low",
        "spend:mid",
        "spend:high",
        "contacts:few",
        "contacts:many",
        "behavior:night_owl",
        "behavior:weekender",
        "behavior:roamer",
    ];
    assert_eq!(names, expected);
}

#[test]
fn feature_order_matches_names() {
    for (i, f) in Feature::ALL.into_iter().enumerate() {
        assert_eq!(f as usize, i);
        assert_eq!(Feature::from_name(FEATURES[i]), Some(f));
    }
    assert_eq!(Feature::from_name("Events"), None);
}

#[test]
fn default_usage_boundaries() {
    use Feature::*;
    assert!(!holds("usage:data_heavy", &[(DataBytes, int(10737418239))]));
    assert!(holds("usage:data_heavy", &[(DataBytes, int(10 << 30))]));
    assert!(!holds("usage:voice_heavy", &[(VoiceSeconds, int(35999))]));
    assert!(holds("usage:voice_heavy", &[(VoiceSeconds, int(36000))]));
    assert!(!holds("usage:sms_heavy", &[(SmsCount, int(99))]));
    assert!(holds("usage:sms_heavy", &[(SmsCount, int(100))]));
    assert!(holds("usage:dormant", &[(Events, int(0))]));
    assert!(!holds("usage:dormant", &[(Events, int(1))]));
}

#[test]
fn default_spend_and_contacts_boundaries() {
    let spend = |cents: i128| {
        let defaults = Definitions::defaults();
        let matched = defaults.matching(&with(&[(Feature::SpendCents, int(cents))]));
        matched
            .into_iter()
            .filter(|n| n.starts_with("spend:"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(spend(0), ["spend:low"]);
    assert_eq!(spend(1999), ["spend:low"]);
    assert_eq!(spend(2000), ["spend:mid"]);
    assert_eq!(spend(5999), ["spend:mid"]);
    assert_eq!(spend(6000), ["spend:high"]);
    assert!(holds("contacts:few", &[(Feature::Contacts, int(4))]));
    assert!(!holds("contacts:few", &[(Feature::Contacts, int(5))]));
    assert!(!holds("contacts:many", &[(Feature::Contacts, int(49))]));
    assert!(holds("contacts:many", &[(Feature::Contacts, int(50))]));
}

#[test]
fn default_behavior_boundaries_are_exact() {
    use Feature::*;
    let share = Value::ratio;
    assert!(holds(
        "behavior:night_owl",
        &[(Events, int(20)), (NightShare, share(8, 20))]
    ));
    assert!(!holds(
        "behavior:night_owl",
        &[(Events, int(20)), (NightShare, share(7, 20))]
    ));
    assert!(!holds(
        "behavior:night_owl",
        &[(Events, int(19)), (NightShare, share(19, 19))]
    ));
    // 0.4 exactly with a huge denominator, and the value just below it.
    let k = 1i128 << 60;
    assert!(holds(
        "behavior:night_owl",
        &[(Events, int(5 * k)), (NightShare, share(2 * k, 5 * k))]
    ));
    assert!(!holds(
        "behavior:night_owl",
        &[(Events, int(5 * k)), (NightShare, share(2 * k - 1, 5 * k))]
    ));
    assert!(holds(
        "behavior:weekender",
        &[(Events, int(20)), (WeekendShare, share(10, 20))]
    ));
    assert!(!holds(
        "behavior:weekender",
        &[(Events, int(20)), (WeekendShare, share(9, 20))]
    ));
    assert!(!holds(
        "behavior:weekender",
        &[(Events, int(19)), (WeekendShare, share(19, 19))]
    ));
    assert!(holds("behavior:roamer", &[(RoamingShare, share(2, 10))]));
    assert!(holds("behavior:roamer", &[(RoamingShare, share(1, 5))]));
    assert!(!holds("behavior:roamer", &[(RoamingShare, share(19, 100))]));
}

#[test]
fn values_compare_exactly() {
    assert_eq!(Value::ratio(2, 5), Value::ratio(4, 10));
    assert!(Value::ratio(-1, 3) < Value::int(0));
    assert!(Value::ratio(-1, 3) > Value::ratio(-1, 2));
    assert_eq!(Value::ratio(i128::MAX, i128::MAX), Value::int(1));
    assert!(Value::ratio(i128::MAX - 1, i128::MAX) < Value::int(1));
    assert!(Value::ratio(i128::MIN, i128::MAX) < Value::int(-1));
    assert!(Value::int(i128::MAX) > Value::ratio(i128::MAX, 2));
    assert_eq!(wide_mul(u128::MAX, u128::MAX), (u128::MAX - 1, 1));
    assert_eq!(wide_mul(1 << 127, 2), (1, 0));
}

#[test]
fn numbers_parse_to_exact_values() {
    let number = |text: &str| match one(&format!("events == {text}")) {
        Expr::Cmp(_, _, Operand::Number(v)) => v,
        other => panic!("{other:?}"),
    };
    assert_eq!(number("10_737_418_240"), int(10737418240));
    assert_eq!(number("0.4"), Value::ratio(2, 5));
    assert_eq!(number("-1"), int(-1));
    assert_eq!(number("-0.25"), Value::ratio(-1, 4));
    assert_eq!(number("1_000.000_1"), Value::ratio(10000001, 10000));
}

#[test]
fn precedence_or_and_not() {
    let c = |f: Feature| Expr::Cmp(Operand::Feature(f), Op::Gt, Operand::Number(int(0)));
    let (a, b, d) = (
        c(Feature::Events),
        c(Feature::SmsCount),
        c(Feature::Contacts),
    );
    let and = |x: &Expr, y: &Expr| Expr::And(vec![x.clone(), y.clone()]);
    let expected = Expr::Or(vec![a.clone(), and(&b, &d)]);
    assert_eq!(
        one("events > 0 or sms_count > 0 and contacts > 0"),
        expected
    );
    let expected = and(&Expr::Not(Box::new(a.clone())), &b);
    assert_eq!(one("not events > 0 and sms_count > 0"), expected);
    assert_eq!(
        one("not not events > 0"),
        Expr::Not(Box::new(Expr::Not(Box::new(a.clone()))))
    );
    assert_eq!(
        one("events > 0 and sms_count > 0 and contacts > 0"),
        Expr::And(vec![a, b, d])
    );

    use Feature::*;
    let defs = "or_and = events > 0 or sms_count > 0 and contacts > 0\n\
                grouped = (events > 0 or sms_count > 0) and contacts > 0\n\
                not_and = not events > 0 and sms_count > 0\n\
                not_grouped = not (events > 0 and sms_count > 0)\n";
    let defs = Definitions::parse("t", defs).unwrap();
    let got = defs.matching(&with(&[
        (Events, int(1)),
        (SmsCount, int(0)),
        (Contacts, int(0)),
    ]));
    assert_eq!(got, ["or_and", "not_grouped"]);
    let got = defs.matching(&with(&[
        (Events, int(0)),
        (SmsCount, int(0)),
        (Contacts, int(1)),
    ]));
    assert_eq!(got, ["not_grouped"]);
    let got = defs.matching(&with(&[
        (Events, int(0)),
        (SmsCount, int(1)),
        (Contacts, int(1)),
    ]));
    assert_eq!(got, ["or_and", "grouped", "not_and", "not_grouped"]);
}

#[test]
fn parentheses_group_conditions_and_operands() {
    let plain = one("events >= 5");
    assert_eq!(one("((events)) >= (5)"), plain);
    assert_eq!(one("((events >= 5))"), plain);
    assert_eq!(
        one("(events >= 5) and (not (sms_count < 1))"),
        one("events >= 5 and not sms_count < 1")
    );
    assert_eq!(
        one("voice_seconds>=36000 and(sms_count<1)"),
        one("voice_seconds >= 36000 and sms_count < 1")
    );
}

#[test]
fn absent_features_make_comparisons_false() {
    let text = "adult = age >= 18\nminor = age < 18\nnot_adult = not age >= 18\nnot_18 = age != 18\n\
                either = events >= 0 or age > 1\nboth = events >= 0 and age > 1\nsame = age == age\n";
    let defs = Definitions::parse("t", text).unwrap();
    let unknown = [(Feature::Events, int(3))];
    assert_eq!(defs.matching(&with(&unknown)), ["not_adult", "either"]);
    let known = [(Feature::Events, int(3)), (Feature::Age, int(18))];
    assert_eq!(
        defs.matching(&with(&known)),
        ["adult", "either", "both", "same"]
    );
}

#[test]
fn blank_lines_comments_and_odd_names() {
    let text =
        "\u{feff}# header\n\n   \n  usage:x+y.z-1 = events > 1   # trailing\r\nb=events>1#x\n";
    let defs = Definitions::parse("t", text).unwrap();
    assert_eq!(defs.names().collect::<Vec<_>>(), ["usage:x+y.z-1", "b"]);
    assert!(Definitions::parse("t", "")
        .unwrap()
        .names()
        .next()
        .is_none());
}

#[test]
fn parse_errors_name_line_column_and_what_was_expected() {
    let features = FEATURES.join(", ");
    let op = "expected a comparison operator (<, <=, >, >=, ==, !=)";
    let bad = "expected a decimal such as 10, 0.4, -1 or 10_000";
    let sides = "a comparison takes a feature or number on each side";
    let cases: Vec<(&str, String)> = vec![
        ("a = event > 1", format!("1:5: unknown feature \"event\"; expected one of {features}")),
        ("a = events 5", format!("1:12: {op} after \"events\", found \"5\"")),
        ("a = events", format!("1:11: {op} after \"events\", found end of line")),
        ("a = not events", format!("1:15: {op} after \"events\", found end of line")),
        ("a = (events) and sms_count > 1", format!("1:14: {op} after \"events\", found \"and\"")),
        ("a = not (events)", format!("1:17: {op} after \"events\", found end of line")),
        ("a = events > 1.2.3", format!("1:14: bad number \"1.2.3\"; {bad}")),
        ("a = events > 10GiB", format!("1:14: bad number \"10GiB\"; {bad}")),
        ("a = events > 1__0", format!("1:14: bad number \"1__0\"; {bad}")),
        ("a = events > 1_", format!("1:14: bad number \"1_\"; {bad}")),
        ("a = events > 1.", format!("1:14: bad number \"1.\"; {bad}")),
        ("a = events > .5", format!("1:14: bad number \".5\"; {bad}")),
        ("a = events > -x", "1:14: unexpected character \"-\"".into()),
        ("a = events > 1000000000000000000000000000000000000000", format!("1:14: number \"1{}\" is out of range", "0".repeat(39))),
        ("a = events > 1 2", "1:16: unexpected \"2\"; expected \"and\", \"or\" or end of line".into()),
        ("a = events > 1 < 2", "1:16: unexpected \"<\"; expected \"and\", \"or\" or end of line".into()),
        ("a = events > 1 AND sms_count > 1", "1:16: unexpected \"AND\"; expected \"and\", \"or\" or end of line".into()),
        ("a = (events > 1", "1:16: missing \")\" to close \"(\" at column 5".into()),
        ("a = ((events > 1) or sms_count > 1", "1:35: missing \")\" to close \"(\" at column 5".into()),
        ("a = events > 1)", "1:15: unexpected \")\" without a matching \"(\"".into()),
        ("a = (events > 1 sms_count)", "1:17: expected \"and\", \"or\" or \")\" to close \"(\" at column 5, found \"sms_count\"".into()),
        ("a = ()", "1:6: expected a feature, number or \"(\", found \")\"".into()),
        ("a =", "1:4: empty expression after \"=\"; expected a condition such as \"events >= 20\"".into()),
        ("a =    # nothing", "1:4: empty expression after \"=\"; expected a condition such as \"events >= 20\"".into()),
        ("usage:data_heavy data_bytes > 1", "1:18: expected \"=\" after segment name \"usage:data_heavy\", found \"data_bytes\"".into()),
        ("a", "1:2: expected \"=\" after segment name \"a\", found end of line".into()),
        ("= events > 1", "1:1: missing segment name before \"=\"".into()),
        ("  @x = events > 1", "1:3: unexpected \"@\"; expected a segment name (letters, digits, _ : + . -)".into()),
        ("a = events = 1", "1:12: unexpected \"=\"; use \"==\" to compare".into()),
        ("a = events >= 1 && sms_count > 1", "1:17: unexpected \"&\"; use \"and\"".into()),
        ("a = events >= 1 || sms_count > 1", "1:17: unexpected \"|\"; use \"or\"".into()),
        ("a = ! events > 1", "1:5: unexpected \"!\"; use \"not\" to negate or \"!=\" to compare".into()),
        ("a = events > and", "1:14: expected a feature, number or \"(\", found \"and\"".into()),
        ("a = events >", "1:13: expected a feature, number or \"(\", found end of line".into()),
        ("a = (events > 1) > 2", format!("1:18: unexpected \">\" after a condition; {sides}")),
        ("a = 1 < (events > 1)", format!("1:9: {sides}; found a condition after \"<\"")),
        ("a = events ≥ 1", "1:12: unexpected character \"≥\"".into()),
        // Columns count characters, not bytes: the no-break space is two bytes.
        ("a =\u{a0}events > 1 and evnts > 1", format!("1:20: unknown feature \"evnts\"; expected one of {features}")),
        ("a = events > 1\nb = events > 2\na = events > 3", "3:1: segment \"a\" is already defined on line 1".into()),
        (
            "# comment\nok = events > 0\nbad = events >= 20 and nigth_share >= 0.4\nlater = events > 1",
            format!("3:24: unknown feature \"nigth_share\"; expected one of {features}"),
        ),
        ("a = events > 1\r\nb = evnts > 1\r\n", format!("2:5: unknown feature \"evnts\"; expected one of {features}")),
    ];
    for (text, expected) in cases {
        assert_eq!(
            error(text),
            format!("segments.txt:{expected}"),
            "for {text:?}"
        );
    }
    let deep = format!("a = {}events > 1{}", "(".repeat(65), ")".repeat(65));
    assert_eq!(
        error(&deep),
        "segments.txt:1:69: expression nested more than 64 levels deep"
    );
    let fine = format!("a = {}events > 1{}", "(".repeat(64), ")".repeat(64));
    assert!(Definitions::parse("t", &fine).is_ok());
    let e = Definitions::parse("f", "a = x > 1").unwrap_err();
    assert_eq!((e.file.as_str(), e.line, e.column), ("f", 1, 5));
}

fn any_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-30i128..30).prop_map(Value::int),
        (-30i128..30, 1i128..12).prop_map(|(n, d)| Value::ratio(n, d)),
        (any::<i64>(), 0u32..8).prop_map(|(n, s)| Value::ratio(n.into(), 10i128.pow(s))),
    ]
}

/// A feature, or a decimal `n / 10^s` (small ones often, to meet the features' values).
fn any_operand() -> impl Strategy<Value = Operand> {
    let decimal = prop_oneof![
        (-30i128..30, 0u32..3).prop_map(|(n, s)| Value::ratio(n, 10i128.pow(s))),
        (any::<i64>(), 0u32..8).prop_map(|(n, s)| Value::ratio(n.into(), 10i128.pow(s))),
    ];
    prop_oneof![
        prop::sample::select(Feature::ALL.to_vec()).prop_map(Operand::Feature),
        decimal.prop_map(Operand::Number),
    ]
}

fn any_expr() -> impl Strategy<Value = Expr> {
    let ops = OPS.map(|(_, op)| op).to_vec();
    let leaf = (any_operand(), prop::sample::select(ops), any_operand());
    let leaf = leaf.prop_map(|(l, op, r)| Expr::Cmp(l, op, r));
    leaf.prop_recursive(5, 48, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
            prop::collection::vec(inner, 2..4).prop_map(Expr::Or),
        ]
    })
}

/// A feature name, or a number in decimal (its `den` a power of ten).
fn operand(o: &Operand) -> String {
    let v = match o {
        Operand::Feature(f) => return f.name().to_owned(),
        Operand::Number(v) => v,
    };
    let (sign, abs, den) = (
        if v.num < 0 { "-" } else { "" },
        v.num.unsigned_abs(),
        v.den as u128,
    );
    let scale = den.ilog10() as usize;
    assert_eq!(10u128.pow(scale as u32), den, "not a decimal: {v:?}");
    match scale {
        0 => format!("{sign}{abs}"),
        _ => format!("{sign}{}.{:0scale$}", abs / den, abs % den),
    }
}

/// Prints with every node in parentheses.
fn full(e: &Expr) -> String {
    let join = |es: &[Expr], sep: &str| es.iter().map(full).collect::<Vec<_>>().join(sep);
    match e {
        Expr::Cmp(l, op, r) => format!("({} {op} {})", operand(l), operand(r)),
        Expr::Not(inner) => format!("(not {})", full(inner)),
        Expr::And(es) => format!("({})", join(es, " and ")),
        Expr::Or(es) => format!("({})", join(es, " or ")),
    }
}

/// Prints with only the parentheses that precedence requires.
fn minimal(e: &Expr) -> String {
    let group = |e: &Expr, needs: bool| match needs {
        true => format!("({})", minimal(e)),
        false => minimal(e),
    };
    let join = |es: &[Expr], sep: &str, and: bool| {
        let needs = |e: &Expr| matches!(e, Expr::Or(_)) || (and && matches!(e, Expr::And(_)));
        es.iter()
            .map(|e| group(e, needs(e)))
            .collect::<Vec<_>>()
            .join(sep)
    };
    match e {
        Expr::Cmp(l, op, r) => format!("{} {op} {}", operand(l), operand(r)),
        Expr::Not(inner) => format!(
            "not {}",
            group(inner, matches!(**inner, Expr::And(_) | Expr::Or(_)))
        ),
        Expr::And(es) => join(es, " and ", true),
        Expr::Or(es) => join(es, " or ", false),
    }
}

#[test]
fn printers() {
    let e = one("not (events > 0.4 or age <= -12.05) and (sms_count == 0 and contacts != 3)");
    assert_eq!(
        full(&e),
        "((not ((events > 0.4) or (age <= -12.05))) and ((sms_count == 0) and (contacts != 3)))"
    );
    assert_eq!(
        minimal(&e),
        "not (events > 0.4 or age <= -12.05) and (sms_count == 0 and contacts != 3)"
    );
}

proptest! {
    #[test]
    fn printed_trees_parse_back_and_evaluate_equally(
        tree in any_expr(),
        values in prop::array::uniform11(prop::option::of(any_value())),
    ) {
        let feature = |f: Feature| values[f as usize];
        for printed in [full(&tree), minimal(&tree)] {
            let parsed = one(&printed);
            prop_assert_eq!(&parsed, &tree, "printed as {}", printed);
            prop_assert_eq!(parsed.holds(&feature), tree.holds(&feature));
        }
    }

    #[test]
    fn value_order_is_cross_multiplication(a in any::<i64>(), b in 1..i64::MAX, c in any::<i64>(), d in 1..i64::MAX) {
        let expected = (i128::from(a) * i128::from(d)).cmp(&(i128::from(c) * i128::from(b)));
        prop_assert_eq!(Value::ratio(a.into(), b.into()).cmp(&Value::ratio(c.into(), d.into())), expected);
    }

    #[test]
    fn wide_mul_matches_narrow_products(x in any::<u64>(), y in any::<u64>(), shift in 0u32..64) {
        let (x, y) = (u128::from(x), u128::from(y));
        prop_assert_eq!(wide_mul(x, y), (0, x * y));
        // Shifting one factor left by 64 moves the product into the high half.
        let (hi, lo) = wide_mul(x << 64, y);
        prop_assert_eq!((hi, lo), ((x * y) >> 64, (x * y) << 64));
        // And by `shift` bits: the 256-bit product shifted the same way.
        let product = x * y;
        let high = if shift == 0 { 0 } else { product >> (128 - shift) };
        prop_assert_eq!(wide_mul(x << shift, y), (high, product << shift));
    }
}
