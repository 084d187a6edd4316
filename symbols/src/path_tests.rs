use super::*;
use SymbolPathElement::{Cache, Dir, Server};

fn srv(stores: &[&str], servers: &[&str]) -> SymbolPathElement {
    Server {
        stores: stores.iter().map(|s| s.to_string()).collect(),
        servers: servers.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn parse_table() {
    let ms = "https://msdl.microsoft.com/download/symbols";
    let cases: Vec<(&str, Vec<SymbolPathElement>)> = vec![
        ("", vec![]),
        ("  ;; ; ", vec![]),
        (
            r"srv*C:\cache*https://msdl.microsoft.com/download/symbols",
            vec![srv(&[r"C:\cache"], &[ms])],
        ),
        (
            r"SRV*C:\cache*HTTPS://msdl.microsoft.com/download/symbols",
            vec![srv(
                &[r"C:\cache"],
                &["HTTPS://msdl.microsoft.com/download/symbols"],
            )],
        ),
        (r"srv*D:\syms", vec![srv(&[r"D:\syms"], &[])]),
        (
            r"srv*C:\a*\\server\share*https://x/sym",
            vec![srv(&[r"C:\a", r"\\server\share"], &["https://x/sym"])],
        ),
        ("srv*", vec![srv(&[], &[])]),
        ("srv**https://x", vec![srv(&[], &["https://x"])]),
        (
            r"cache*C:\dbgcache",
            vec![Cache(Some(r"C:\dbgcache".into()))],
        ),
        ("cache*", vec![Cache(None)]),
        (
            r"symsrv*symsrv.dll*C:\store*https://x/s",
            vec![srv(&[r"C:\store"], &["https://x/s"])],
        ),
        (r"symsrv*symsrv.dll", vec![srv(&[], &[])]),
        (
            r"*C:\down*https://x",
            vec![srv(&[r"C:\down"], &["https://x"])],
        ),
        (r"C:\flat", vec![Dir(r"C:\flat".into())]),
        ("/home/u/pdbs", vec![Dir("/home/u/pdbs".into())]),
        (
            r"  C:\flat ; srv*C:\cache*https://x ;cache*/tmp/c; ",
            vec![
                Dir(r"C:\flat".into()),
                srv(&[r"C:\cache"], &["https://x"]),
                Cache(Some("/tmp/c".into())),
            ],
        ),
        (
            r"srv * C:\cache * https://x",
            vec![srv(&[r"C:\cache"], &["https://x"])],
        ),
        (r"dir;;other;", vec![Dir("dir".into()), Dir("other".into())]),
        // An unknown keyword is a directory whose name happens to contain a star, as the debugger treats it.
        ("foo*bar", vec![Dir("foo*bar".into())]),
    ];
    for (text, want) in cases {
        assert_eq!(
            SymbolPath::parse(text).elements(),
            &want[..],
            "parsing {text:?}"
        );
    }
}

#[test]
fn local_dirs_and_servers_in_order_without_duplicates() {
    let p = SymbolPath::parse(
        r"C:\flat;srv*C:\cache*https://a;cache*C:\cache;srv*E:\s*http://b;C:\flat",
    );
    assert_eq!(
        p.local_dirs(),
        vec![
            (r"C:\flat".to_string(), false),
            (r"C:\cache".to_string(), true),
            (r"E:\s".to_string(), true)
        ]
    );
    assert_eq!(p.servers(), vec!["https://a", "http://b"]);
}

#[test]
fn extend_appends_in_order() {
    let mut p = SymbolPath::parse("a");
    p.extend(SymbolPath::parse("srv*b"));
    assert_eq!(p.text(), "a;srv*b");
    assert_eq!(
        p.local_dirs(),
        vec![("a".to_string(), false), ("b".to_string(), true)]
    );
    p.extend(SymbolPath::parse(""));
    assert_eq!(p.text(), "a;srv*b");
}

#[test]
fn backslashes_become_separators_off_windows() {
    let p = local_path(r"dumps\symbols\x");
    if cfg!(windows) {
        assert_eq!(p, PathBuf::from(r"dumps\symbols\x"));
    } else {
        assert_eq!(p, PathBuf::from("dumps/symbols/x"));
    }
}

#[test]
fn environment_alt_path_comes_first_and_blank_is_none() {
    let p = SymbolPath::from_vars(Some("srv*A"), Some("B")).unwrap();
    assert_eq!(
        p.local_dirs(),
        vec![("A".to_string(), true), ("B".to_string(), false)]
    );
    assert_eq!(p.text(), "srv*A;B");
    assert_eq!(SymbolPath::from_vars(None, Some(" ; ")), None);
    assert_eq!(SymbolPath::from_vars(None, None), None);
    assert_eq!(
        SymbolPath::from_vars(None, Some("C:\\s"))
            .unwrap()
            .elements(),
        &[Dir("C:\\s".into())]
    );
}
