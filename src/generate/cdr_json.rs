//! Writing a CDR as one JSON line, the tidy way or one of the broken ways.
//!
//! A `Style` is how a mediation system happened to write a record: key order,
//! phone formats, `start` as epoch or RFC 3339 (in `Z`, `+01:00` or `-05:00`),
//! zero fields left out, `callee` absent or `null` on data records, spaces
//! after separators, unknown extra fields (`imsi`, `tech`). None of that
//! changes the record's meaning after SPEC §1 normalisation.
//!
//! `write_malformed` breaks a line in exactly one way and returns the SPEC §2
//! reason a correct reader must give: `malformed_json` (truncated, single
//! quotes, trailing comma, not an object, a key twice, `NaN`, text after the
//! object), `missing_field:<name>` or `bad_value:<name>`.

use std::fmt;

use super::cdr::{Cdr, Cell, Kind};
use super::rng::Rng;
use super::world::Geography;

/// CDR fields, in the SPEC §2 checking order (the first five are required).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    RecordId,
    Msisdn,
    Type,
    Start,
    CellId,
    Callee,
    Duration,
    Bytes,
    Charge,
    Roaming,
}

const FIELDS: [Field; 10] = [
    Field::RecordId,
    Field::Msisdn,
    Field::Type,
    Field::Start,
    Field::CellId,
    Field::Callee,
    Field::Duration,
    Field::Bytes,
    Field::Charge,
    Field::Roaming,
];

impl Field {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Field::RecordId => "record_id",
            Field::Msisdn => "msisdn",
            Field::Type => "type",
            Field::Start => "start",
            Field::CellId => "cell_id",
            Field::Callee => "callee",
            Field::Duration => "duration_s",
            Field::Bytes => "bytes",
            Field::Charge => "charge_cents",
            Field::Roaming => "roaming",
        }
    }
}

/// The SPEC §2 dead-letter reason of a planted malformed line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reason {
    MalformedJson,
    MissingField(Field),
    BadValue(Field),
}

impl Reason {
    /// Number of distinct reasons (`index` is below it).
    pub(crate) const COUNT: usize = 16;

    pub(crate) fn index(self) -> usize {
        match self {
            Reason::MalformedJson => 0,
            Reason::MissingField(f) => 1 + f as usize,
            Reason::BadValue(f) => 6 + f as usize,
        }
    }

    pub(crate) fn from_index(i: usize) -> Self {
        match i {
            0 => Reason::MalformedJson,
            1..=5 => Reason::MissingField(FIELDS[i - 1]),
            _ => Reason::BadValue(FIELDS[i - 6]),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::MalformedJson => f.write_str("malformed_json"),
            Reason::MissingField(x) => write!(f, "missing_field:{}", x.name()),
            Reason::BadValue(x) => write!(f, "bad_value:{}", x.name()),
        }
    }
}

/// One way to break a line's field.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Tamper {
    Missing(Field),
    Bad(Field, &'static str),
}

/// Key orders seen from the different mediation systems.
const ORDERS: [[Field; 10]; 4] = {
    use Field::*;
    [
        [
            RecordId, Msisdn, Type, Callee, Start, Duration, Bytes, CellId, Charge, Roaming,
        ],
        [
            Start, CellId, Type, RecordId, Msisdn, Callee, Duration, Bytes, Charge, Roaming,
        ],
        [
            Roaming, Charge, Bytes, Duration, Start, Callee, Type, Msisdn, RecordId, CellId,
        ],
        [
            Msisdn, RecordId, CellId, Start, Type, Duration, Callee, Charge, Bytes, Roaming,
        ],
    ]
};

/// Invalid values, as raw JSON, per field (never a second problem).
const BAD_VALUES: [&[&str]; 10] = [
    &["\"\"", "42"],
    &[
        "\"anonymous\"",
        "\"12345\"",
        "\"+49 151 12ab 5678\"",
        "\"+4915112345678901234\"",
    ],
    &["\"video\"", "\"Voice\"", "\"mms\""],
    &[
        "\"yesterday\"",
        "\"2026-11-31T08:00:00Z\"",
        "\"2026-11-02T25:61:00Z\"",
        "1798588850.5",
        "\"\"",
    ],
    &["\"\"", "262011234"],
    &["\"n/a\"", "\"+49 12\""],
    &["-12", "12.5", "\"60\""],
    &["-1", "9223372036854775808", "\"1024\""],
    &["-5", "1.5"],
    &["\"yes\"", "\"Y\""],
];

/// Lines that are not one JSON object at all.
const NOT_JSON: [&str; 10] = [
    "null,null,null",
    "#mediation batch 20261102-0042 end",
    "<html><body>502 Bad Gateway</body></html>",
    "[]",
    "\"m1-000000001\"",
    "42",
    "null",
    "{",
    "}",
    "record_id,msisdn,type,start",
];

/// Text after a complete object.
const TRAILERS: [&str; 5] = ["}", " x", ",", "{}", " //resent"];

#[derive(Clone, Copy, Debug)]
pub(crate) struct Style {
    order: u8,
    caller_fmt: u8,
    callee_fmt: u8,
    /// `Some(offset minutes)`: `start` as an RFC 3339 string.
    pub(crate) start_offset: Option<i32>,
    data_callee_null: bool,
    /// Bit `f`: leave field `f` out when it is 0 / false.
    omit_zero: u8,
    pretty: bool,
    /// 0 none, 1 `imsi`, 2 `tech`.
    extra: u8,
}

fn push_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

impl Style {
    pub(crate) fn draw(rng: &mut Rng, kind: Kind) -> Style {
        let fmt = |rng: &mut Rng, p0: f64| {
            if rng.chance(p0) {
                0
            } else {
                1 + rng.below(7) as u8
            }
        };
        let start_offset = match rng.weighted(&[0.945, 0.04, 0.01, 0.005]) {
            0 => None,
            1 => Some(0),
            2 => Some(60),
            _ => Some(-300),
        };
        let mut omit_zero = 0;
        for bit in 0..4 {
            if rng.chance(0.15) {
                omit_zero |= 1 << bit;
            }
        }
        Style {
            order: rng.weighted(&[0.85, 0.05, 0.05, 0.05]) as u8,
            caller_fmt: fmt(rng, 0.72),
            callee_fmt: fmt(rng, 0.75),
            start_offset,
            data_callee_null: kind == Kind::Data && rng.chance(0.45),
            omit_zero,
            pretty: rng.chance(0.03),
            extra: rng.weighted(&[0.89, 0.08, 0.03]) as u8,
        }
    }

    fn key(&self, out: &mut Vec<u8>, first: &mut bool, name: &str) {
        if !*first {
            out.extend_from_slice(if self.pretty { b", " } else { b"," });
        }
        *first = false;
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(if self.pretty { b"\": " } else { b"\":" });
    }

    fn push_record_id(cdr: &Cdr, out: &mut Vec<u8>) {
        out.push(b'm');
        out.push(b'0' + cdr.switch);
        out.push(b'-');
        let mut buf = itoa::Buffer::new();
        let digits = buf.format(cdr.idx + 1).as_bytes();
        out.extend(std::iter::repeat_n(
            b'0',
            9usize.saturating_sub(digits.len()),
        ));
        out.extend_from_slice(digits);
    }

    fn push_cell(cdr: &Cdr, geo: &Geography, out: &mut Vec<u8>) {
        match cdr.cell {
            Cell::Tower(t) => out.extend_from_slice(geo.towers[t as usize].cell_id.as_bytes()),
            Cell::Unlisted(ci) => {
                out.extend_from_slice(b"262-01-9999-");
                push_u64(out, u64::from(ci));
            }
            Cell::Foreign { mcc, lac, ci } => {
                push_u64(out, u64::from(mcc));
                out.extend_from_slice(b"-01-");
                push_u64(out, u64::from(lac));
                out.push(b'-');
                push_u64(out, u64::from(ci));
            }
        }
    }

    /// Appends the record as one JSON object (no newline), with `tamper`.
    pub(crate) fn write(
        &self,
        cdr: &Cdr,
        geo: &Geography,
        tamper: Option<Tamper>,
        out: &mut Vec<u8>,
    ) {
        out.push(b'{');
        let mut first = true;
        for f in ORDERS[self.order as usize] {
            match tamper {
                Some(Tamper::Missing(m)) if m == f => continue,
                Some(Tamper::Bad(b, raw)) if b == f => {
                    self.key(out, &mut first, f.name());
                    out.extend_from_slice(raw.as_bytes());
                    continue;
                }
                _ => {}
            }
            let omit = |bit: u8| self.omit_zero & (1 << bit) != 0;
            match f {
                Field::RecordId => {
                    self.key(out, &mut first, f.name());
                    out.push(b'"');
                    Self::push_record_id(cdr, out);
                    out.push(b'"');
                }
                Field::Msisdn => {
                    self.key(out, &mut first, f.name());
                    out.push(b'"');
                    cdr.caller.push(self.caller_fmt, out);
                    out.push(b'"');
                }
                Field::Type => {
                    self.key(out, &mut first, f.name());
                    out.extend_from_slice(match cdr.kind {
                        Kind::Voice => b"\"voice\"",
                        Kind::Sms => b"\"sms\"",
                        Kind::Data => b"\"data\"",
                    });
                }
                Field::Start => {
                    self.key(out, &mut first, f.name());
                    match self.start_offset {
                        None => {
                            out.extend_from_slice(itoa::Buffer::new().format(cdr.start).as_bytes())
                        }
                        Some(off) => {
                            out.push(b'"');
                            super::geo::push_rfc3339(out, cdr.start, off);
                            out.push(b'"');
                        }
                    }
                }
                Field::CellId => {
                    self.key(out, &mut first, f.name());
                    out.push(b'"');
                    Self::push_cell(cdr, geo, out);
                    out.push(b'"');
                }
                Field::Callee => match cdr.callee {
                    Some(p) => {
                        self.key(out, &mut first, f.name());
                        out.push(b'"');
                        p.push(self.callee_fmt, out);
                        out.push(b'"');
                    }
                    None if self.data_callee_null => {
                        self.key(out, &mut first, f.name());
                        out.extend_from_slice(b"null");
                    }
                    None => {}
                },
                Field::Duration | Field::Bytes | Field::Charge => {
                    let (v, bit) = match f {
                        Field::Duration => (u64::from(cdr.duration_s), 0),
                        Field::Bytes => (cdr.bytes, 1),
                        _ => (u64::from(cdr.charge_cents), 2),
                    };
                    if v != 0 || !omit(bit) {
                        self.key(out, &mut first, f.name());
                        push_u64(out, v);
                    }
                }
                Field::Roaming => {
                    if cdr.roaming || !omit(3) {
                        self.key(out, &mut first, f.name());
                        out.extend_from_slice(if cdr.roaming { b"true" } else { b"false" });
                    }
                }
            }
        }
        match self.extra {
            1 => {
                self.key(out, &mut first, "imsi");
                out.extend_from_slice(b"\"26201");
                let digits = cdr.caller.nsn % 10_000_000_000;
                let mut buf = itoa::Buffer::new();
                let s = buf.format(digits).as_bytes();
                out.extend(std::iter::repeat_n(b'0', 10 - s.len()));
                out.extend_from_slice(s);
                out.push(b'"');
            }
            2 => {
                self.key(out, &mut first, "tech");
                out.extend_from_slice(b"\"LTE\"");
            }
            _ => {}
        }
        out.push(b'}');
    }

    /// Appends the record broken in one way (no newline); returns the reason
    /// a SPEC §2 reader must dead-letter it with.
    pub(crate) fn write_malformed(
        &self,
        cdr: &Cdr,
        geo: &Geography,
        rng: &mut Rng,
        out: &mut Vec<u8>,
    ) -> Reason {
        let start = out.len();
        match rng.weighted(&[20.0, 8.0, 8.0, 8.0, 3.0, 2.0, 3.0, 18.0, 30.0]) {
            0 => {
                self.write(cdr, geo, None, out);
                let len = out.len() - start;
                let cut = 1 + rng.below(len as u64 - 2) as usize;
                out.truncate(start + cut);
            }
            1 => {
                self.write(cdr, geo, None, out);
                for b in &mut out[start..] {
                    if *b == b'"' {
                        *b = b'\'';
                    }
                }
            }
            2 => {
                self.write(cdr, geo, None, out);
                out.pop();
                out.extend_from_slice(b",}");
            }
            3 => out.extend_from_slice(NOT_JSON[rng.index(NOT_JSON.len())].as_bytes()),
            4 => {
                self.write(cdr, geo, None, out);
                out.pop();
                out.extend_from_slice(b",\"record_id\":\"");
                Self::push_record_id(cdr, out);
                out.extend_from_slice(b"\"}");
            }
            5 => self.write(cdr, geo, Some(Tamper::Bad(Field::Duration, "NaN")), out),
            6 => {
                self.write(cdr, geo, None, out);
                out.extend_from_slice(TRAILERS[rng.index(TRAILERS.len())].as_bytes());
            }
            7 => {
                let f = FIELDS[rng.index(5)];
                self.write(cdr, geo, Some(Tamper::Missing(f)), out);
                return Reason::MissingField(f);
            }
            _ => {
                let mut f = FIELDS[rng.index(FIELDS.len())];
                if f == Field::Callee && cdr.kind == Kind::Data {
                    f = Field::Duration; // a data record's callee may be absent
                }
                let values = BAD_VALUES[f as usize];
                let raw = values[rng.index(values.len())];
                self.write(cdr, geo, Some(Tamper::Bad(f, raw)), out);
                return Reason::BadValue(f);
            }
        }
        Reason::MalformedJson
    }
}
