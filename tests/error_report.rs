//! One error type: every variant turns into an `ErrorReport` and back without loss (the Durable
//! Object ↔ isolate wire depends on it), the report never holds the secret, and the codes are
//! defined once — the TypeScript union in `js/index.d.ts` is checked against them.
use autopay_auth::*;

fn every_variant() -> Vec<Error> {
    let server = |status, retry_after| ServerError {
        status,
        error: Some("access_denied".into()),
        description: Some("Unauthorized".into()),
        retry_after,
    };
    vec![
        Error::AccessDenied(server(401, None)),
        Error::InvalidRequest(server(400, None)),
        Error::RateLimited(server(429, Some(30))),
        Error::Server(ServerError {
            status: 503,
            error: None,
            description: None,
            retry_after: None,
        }),
        Error::Network {
            host: "api-auth.autopay.io".into(),
            message: "fetch failed (ECONNREFUSED)".into(),
        },
        Error::Timeout {
            host: "api-auth.autopay.io".into(),
            after_ms: 10_000,
        },
        Error::InvalidResponse {
            status: 200,
            reason: "`expires_in` must be a positive integer".into(),
        },
        Error::config(field::TOKEN_URL, "must use https"),
        Error::argument("path must be a string"),
        Error::MintBudgetExhausted { retry_after: 1_800 },
        Error::StoreUnavailable {
            reason: "the store did not answer within storeWaitMs".into(),
        },
    ]
}

#[test]
fn every_error_survives_the_report_round_trip() {
    let all = every_variant();
    let codes: Vec<_> = all.iter().map(Error::code).collect();
    assert_eq!(codes, code::ALL, "one variant per code, in order");
    for e in all {
        let report = e.report();
        assert_eq!(report.code, e.code());
        assert_eq!(report.message, e.to_string());
        let json = serde_json::to_string(&report).unwrap();
        // the Worker's path: read field by field
        let back = ErrorReport::decode(&json).unwrap();
        assert_eq!(back, serde_json::from_str::<ErrorReport>(&json).unwrap());
        assert_eq!(Error::try_from(back), Ok(e.clone()), "{json}");
    }
}

#[test]
fn a_report_with_an_unknown_code_or_missing_fields_is_refused_not_guessed() {
    let mut unknown = Error::argument("x").report();
    unknown.code = "teapot".into();
    assert!(Error::try_from(unknown).is_err());
    let mut no_status = Error::AccessDenied(ServerError {
        status: 401,
        error: None,
        description: None,
        retry_after: None,
    })
    .report();
    no_status.status = None;
    assert!(Error::try_from(no_status).is_err());
}

#[test]
fn reports_name_fields_in_each_edges_vocabulary() {
    let e = Error::config(field::REFRESH_RATIO, "must be a number in (0, 1]");
    assert_eq!(e.report().field.as_deref(), Some("refresh_ratio"));
    let npm = e
        .clone()
        .renamed(|f| (f == field::REFRESH_RATIO).then_some("refreshRatio"));
    assert_eq!(npm.report().field.as_deref(), Some("refreshRatio"));
    assert!(npm.to_string().contains("refreshRatio"));
    let unknown = e.renamed(|_| None);
    assert_eq!(
        unknown.field(),
        Some("refresh_ratio"),
        "names an edge does not know stay"
    );
}

#[test]
fn the_typescript_union_lists_exactly_the_rust_codes() {
    let dts = include_str!("../js/index.d.ts");
    let start = dts.find("export type AutopayAuthErrorCode =").expect("the union");
    let union = &dts[start..start + dts[start..].find(';').unwrap()];
    let mut ts: Vec<&str> = union.split('\'').skip(1).step_by(2).collect();
    let mut rust = code::ALL.to_vec();
    ts.sort_unstable();
    rust.sort_unstable();
    assert_eq!(ts, rust);
}
