//! Hosts for multi-host tests: network namespaces joined by veth links to a bridge, made
//! with `ip` (iproute2, and root), and removed when dropped. A host is cut off by taking its
//! link to the bridge down, and brought back by taking it up.
//!
//! Nodes run on a host either as sockets bound inside its namespace
//! ([`Hosts::udp_socket`]) or as a child process started inside it
//! ([`Hosts::run_this_test`]). The test's own process can join the bridge too
//! ([`Hosts::attach_root`]), so nodes in it reach the hosts.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Network namespaces and links made for one test run; removed on drop.
#[derive(Debug)]
pub struct Hosts {
    prefix: String,
    /// The /24 every address is in: 10.X.0.0, with X from the process id and a count, so
    /// that tests running at the same time do not clash.
    subnet: u8,
    names: Vec<String>,
    namespaces: Vec<String>,
    root_link: Option<String>,
}

impl Hosts {
    fn ip(args: &[&str]) -> Result<(), String> {
        let out = Command::new("ip")
            .args(args)
            .output()
            .map_err(|e| format!("cannot run `ip`: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "`ip {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// The namespace of `host`.
    pub fn namespace(&self, host: &str) -> String {
        format!("{}-{host}", self.prefix)
    }

    /// A bridge in a namespace of its own and, per host, a namespace with a veth link to
    /// it, host `i` (from 0) at 10.X.0.(i+1)/24. An error says why they cannot be made
    /// (not root, no `ip`); what was made so far is removed.
    pub fn make(hosts: &[&str]) -> Result<Self, String> {
        // Unique per process and per set of hosts, for tests running side by side.
        static MADE: AtomicU32 = AtomicU32::new(0);
        let (pid, n) = (std::process::id(), MADE.fetch_add(1, Ordering::Relaxed));
        let mut made = Self {
            prefix: format!("dmt{pid}x{n}"),
            subnet: u8::try_from(100 + (pid + 7 * n) % 150).unwrap_or(100),
            names: hosts.iter().map(|h| (*h).to_owned()).collect(),
            namespaces: Vec::new(),
            root_link: None,
        };
        let sw = made.namespace("sw");
        Self::ip(&["netns", "add", &sw])?;
        made.namespaces.push(sw.clone());
        Self::ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"])?;
        Self::ip(&["-n", &sw, "link", "set", "br0", "up"])?;
        for host in hosts {
            let ns = made.namespace(host);
            Self::ip(&["netns", "add", &ns])?;
            made.namespaces.push(ns.clone());
            let (inside, outside) = (format!("h{host}"), format!("s{host}"));
            Self::ip(&[
                "-n", &sw, "link", "add", &outside, "type", "veth", "peer", "name", &inside,
                "netns", &ns,
            ])?;
            Self::ip(&["-n", &sw, "link", "set", &outside, "master", "br0"])?;
            Self::ip(&["-n", &sw, "link", "set", &outside, "up"])?;
            let addr = format!("{}/24", made.host_ip(host));
            Self::ip(&["-n", &ns, "addr", "add", &addr, "dev", &inside])?;
            Self::ip(&["-n", &ns, "link", "set", &inside, "up"])?;
            Self::ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(made)
    }

    /// The result of making hosts, or `None` after printing `SKIPPED` and why (not root, no
    /// `ip`): a test that needs them then checks nothing else, and says so in its output.
    /// With `DEMITTER_REQUIRE_NETNS` set (as `.ci/run` sets it), it fails instead, so that
    /// CI cannot pass by skipping.
    pub fn or_skip(made: Result<Self, String>) -> Option<Self> {
        match made {
            Ok(hosts) => Some(hosts),
            Err(why) => {
                assert!(
                    std::env::var_os("DEMITTER_REQUIRE_NETNS").is_none(),
                    "cannot make network namespaces here: {why} (DEMITTER_REQUIRE_NETNS is set, so this fails instead of skipping)"
                );
                println!(
                    "SKIPPED: cannot make network namespaces here (needs root and iproute2): {why}"
                );
                None
            }
        }
    }

    /// Joins this process's own namespace to the bridge, at [`root_ip`](Self::root_ip).
    pub fn attach_root(mut self) -> Result<Self, String> {
        let (here, there) = (format!("{}r", self.prefix), "sroot".to_owned());
        let sw = self.namespace("sw");
        Self::ip(&[
            "link", "add", &here, "type", "veth", "peer", "name", &there, "netns", &sw,
        ])?;
        self.root_link = Some(here.clone());
        Self::ip(&["-n", &sw, "link", "set", &there, "master", "br0"])?;
        Self::ip(&["-n", &sw, "link", "set", &there, "up"])?;
        Self::ip(&[
            "addr",
            "add",
            &format!("{}/24", self.root_ip()),
            "dev",
            &here,
        ])?;
        Self::ip(&["link", "set", &here, "up"])?;
        Ok(self)
    }

    /// The address of `host`.
    ///
    /// # Panics
    ///
    /// If `host` is not one of the hosts made.
    pub fn host_ip(&self, host: &str) -> Ipv4Addr {
        let i = self
            .names
            .iter()
            .position(|h| h == host)
            .unwrap_or_else(|| panic!("no host {host}"));
        Ipv4Addr::new(10, self.subnet, 0, u8::try_from(i + 1).unwrap_or(250))
    }

    /// This process's address on the bridge, after [`attach_root`](Self::attach_root).
    pub fn root_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, self.subnet, 0, 254)
    }

    /// Takes `host`'s link to the bridge down (`up = false`) or up again.
    ///
    /// # Panics
    ///
    /// If `ip` fails.
    pub fn set_link(&self, host: &str, up: bool) {
        let state = if up { "up" } else { "down" };
        Self::ip(&[
            "-n",
            &self.namespace("sw"),
            "link",
            "set",
            &format!("s{host}"),
            state,
        ])
        .expect("the link changes state");
    }

    /// Cuts `host` off for `outage`, then brings it back: the outage's length is what is
    /// under test, so this waits for it.
    pub async fn cut_off(&self, host: &str, outage: std::time::Duration) {
        self.set_link(host, false);
        tokio::time::sleep(outage).await;
        self.set_link(host, true);
    }

    /// A UDP socket bound inside `host`'s namespace.
    ///
    /// # Panics
    ///
    /// If the namespace cannot be entered or the address bound.
    pub fn udp_socket(&self, host: &str, addr: SocketAddr) -> UdpSocket {
        let path = format!("/run/netns/{}", self.namespace(host));
        // setns moves only the calling thread: bind on a thread of its own.
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).expect("the namespace exists");
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("enters it");
            UdpSocket::bind(addr).expect("binds inside the namespace")
        })
        .join()
        .expect("the binding thread")
    }

    /// Runs the test `test` of the current test binary again inside `host`'s namespace,
    /// as [`child::run_this_test`](crate::child::run_this_test) does.
    pub fn run_this_test(
        &self,
        host: &str,
        test: &str,
        env: &[(&str, String)],
    ) -> tokio::process::Child {
        let ns = self.namespace(host);
        crate::child::run_this_test(&["ip", "netns", "exec", &ns], test, env)
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        // Removing a namespace removes the links in it, and their peers with them.
        for ns in self.namespaces.iter().rev() {
            let _ = Self::ip(&["netns", "del", ns]);
        }
        if let Some(link) = &self.root_link {
            let _ = Self::ip(&["link", "del", link]);
        }
    }
}
