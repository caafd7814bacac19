//! Error paths of the ioctl backend that a host without the module can
//! reach: each names the real cause.

use std::io::Write;

use relaymap::{Channel, Error};

/// One test: `RELAYMAP_DEVICE` is process-wide.
#[test]
#[cfg_attr(miri, ignore = "opens files and issues ioctls")]
fn device_errors_name_the_cause() {
    std::env::set_var("RELAYMAP_DEVICE", "/nonexistent/relaymap");
    let e = Channel::open("demo").unwrap_err();
    assert!(matches!(e, Error::ModuleNotLoaded { .. }), "{e}");
    assert!(e.to_string().contains("module is not loaded"), "{e}");
    assert!(matches!(
        relaymap::list_channels(),
        Err(Error::ModuleNotLoaded { .. })
    ));
    assert!(matches!(
        relaymap::device_abi_version(),
        Err(Error::ModuleNotLoaded { .. })
    ));
    // Some other character device: refused by its answer to GET_VERSION.
    std::env::set_var("RELAYMAP_DEVICE", "/dev/null");
    let e = Channel::open("demo").unwrap_err();
    assert!(matches!(e, Error::NotAChannel { .. }), "{e}");
    assert!(e.to_string().contains("GET_VERSION"), "{e}");
    std::env::remove_var("RELAYMAP_DEVICE");
}

#[test]
#[cfg_attr(miri, ignore = "opens files and issues ioctls")]
fn open_path_errors_name_the_cause() {
    let dir = std::env::temp_dir().join(format!("relaymap-errors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let e = Channel::open_path(&dir).unwrap_err();
    assert!(e.to_string().contains("no control file"), "{e}");
    // A control file that is not relaymap's: GET_INFO answers ENOTTY.
    std::fs::File::create(dir.join("control"))
        .unwrap()
        .write_all(b"not a channel")
        .unwrap();
    let e = Channel::open_path(&dir).unwrap_err();
    assert!(matches!(e, Error::NotAChannel { .. }), "{e}");
    assert!(e.to_string().contains("ENOTTY"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
    let e = Channel::open_path(dir.join("gone")).unwrap_err();
    assert!(e.to_string().contains("no such directory"), "{e}");
}

#[test]
fn messages_say_what_to_do() {
    let busy = Error::Busy {
        cpu: 1,
        holder_pid: Some(1234),
        holder_comm: Some("relaymap-dump".into()),
    };
    assert_eq!(
        busy.to_string(),
        "cpu 1 of the channel is held by pid 1234 (relaymap-dump): consuming is exclusive \
         per CPU; stop that consumer or wait for it to exit"
    );
    let none = Error::NoSuchChannel {
        name: "x".into(),
        available: vec!["demo".into(), "lg".into()],
    };
    assert_eq!(
        none.to_string(),
        "no relaymap channel named \"x\" (channels: demo, lg)"
    );
    let lock = Error::Lockdown {
        path: "/sys/kernel/debug/relaymap/demo/control".into(),
        level: "integrity".into(),
        source: std::io::Error::from_raw_os_error(libc::EPERM),
    };
    assert!(lock.to_string().contains("Channel::open(name)"), "{lock}");
    assert_eq!(lock.raw_os_error(), Some(libc::EPERM));
    let abi = Error::AbiMismatch { kernel: 1, sdk: 2 };
    assert!(abi.to_string().contains("ABI 1 is not supported"), "{abi}");
}
