//! Nodes as separate hosts in network namespaces, for network-partition
//! faults (issue 14). `Network::create(n)` makes a bridge in this (the
//! root) namespace with address 10.77.S.254/24 and, per node id 1..=n, a
//! namespace with a veth pair: one end in the namespace as `eth0` with
//! 10.77.S.<id>/24, the other on the bridge. The test's clients run here
//! and reach every node through the bridge; nodes reach each other
//! through it too. Faults are `tc` rules inside a node's namespace
//! (every packet to chosen peers dropped, netem's `loss 100%`, so a cut can
//! be one-way and leave the clients' path open). Everything is removed
//! when the `Network` is dropped, also when the test panics. Creation
//! fails (and the caller skips, saying why) when not root or `ip netns`
//! is not allowed. `S` and the names come from the process id and a
//! counter, so parallel tests never share a network.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use super::cluster::Hosts;

static NETWORKS: AtomicU32 = AtomicU32::new(0);

/// Every namespace, veth and the bridge of one test; removed on drop.
pub struct Network {
    /// What every name of this network contains (process id, counter).
    tag: String,
    bridge: String,
    subnet: String,
    /// Node id -> namespace name.
    netns: BTreeMap<i32, String>,
}

/// Runs `args` (the program first), `Err` with its output unless it succeeded.
fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0]).args(&args[1..]).output().map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

impl Network {
    /// A network of nodes 1..=n, or why it cannot be made on this machine.
    pub fn create(n: i32) -> Result<Network, String> {
        let k = NETWORKS.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let tag = format!("{}{k}", pid % 100_000);
        let subnet = format!("10.77.{}", (pid.wrapping_mul(7).wrapping_add(k)) % 250 + 1);
        let mut net = Network { bridge: format!("kkb{tag}"), subnet, netns: BTreeMap::new(), tag: tag.clone() };
        // From here on, Drop removes whatever was made, also on an error.
        run(&["ip", "link", "add", &net.bridge, "type", "bridge"])?;
        run(&["ip", "addr", "add", &format!("{}.254/24", net.subnet), "dev", &net.bridge])?;
        run(&["ip", "link", "set", &net.bridge, "up"])?;
        for id in 1..=n {
            let ns = format!("kk{tag}-{id}");
            run(&["ip", "netns", "add", &ns])?;
            net.netns.insert(id, ns.clone());
            let veth = format!("kkv{tag}n{id}");
            run(&["ip", "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns])?;
            run(&["ip", "link", "set", &veth, "master", &net.bridge])?;
            run(&["ip", "link", "set", &veth, "up"])?;
            run(&["ip", "-n", &ns, "addr", "add", &format!("{}.{id}/24", net.subnet), "dev", "eth0"])?;
            run(&["ip", "-n", &ns, "link", "set", "eth0", "up"])?;
            run(&["ip", "-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(net)
    }

    /// Each node's address and namespace, as the cluster harness takes them.
    pub fn hosts(&self) -> Hosts {
        Hosts { addr: self.netns.keys().map(|id| (*id, self.addr(*id))).collect(), netns: self.netns.clone() }
    }

    pub fn addr(&self, id: i32) -> String {
        format!("{}.{id}", self.subnet)
    }

    fn tc(&self, id: i32, args: &[&str]) -> Result<(), String> {
        let mut all = vec!["ip", "netns", "exec", self.netns[&id].as_str(), "tc"];
        all.extend_from_slice(args);
        run(&all)
    }

    /// Drops every packet node `from` sends to the nodes `to` (a one-way
    /// cut; what it receives, and its traffic with the clients, pass): an
    /// `htb` root whose default class passes everything and whose second
    /// class, fed only by `u32` filters on those destinations, ends in a
    /// `blackhole` qdisc (this kernel has no `netem` or `prio`; the
    /// effect is netem's `loss 100%`).
    pub fn drop_from(&self, from: i32, to: &[i32]) {
        let setup = || -> Result<(), String> {
            self.tc(from, &["qdisc", "add", "dev", "eth0", "root", "handle", "1:", "htb", "default", "1"])?;
            for class in ["1:1", "1:2"] {
                self.tc(
                    from,
                    &["class", "add", "dev", "eth0", "parent", "1:", "classid", class, "htb", "rate", "10gbit"],
                )?;
            }
            self.tc(from, &["qdisc", "add", "dev", "eth0", "parent", "1:2", "handle", "20:", "blackhole"])?;
            for peer in to {
                let dst = format!("{}/32", self.addr(*peer));
                self.tc(
                    from,
                    &[
                        "filter", "add", "dev", "eth0", "parent", "1:", "protocol", "ip", "prio", "1", "u32", "match",
                        "ip", "dst", &dst, "flowid", "1:2",
                    ],
                )?;
            }
            Ok(())
        };
        if let Err(e) = setup() {
            panic!("cut node {from} off from {to:?}: {e}");
        }
    }

    /// Removes node `id`'s rules: its packets flow again.
    pub fn heal(&self, id: i32) {
        if let Err(e) = self.tc(id, &["qdisc", "del", "dev", "eth0", "root"]) {
            panic!("heal node {id}: {e}");
        }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        // The veth pairs first: a deleted namespace lingers (and keeps its
        // veth end, and with it the pair) while the kernel still holds
        // sockets of the killed nodes.
        for id in self.netns.keys() {
            let _ = run(&["ip", "link", "del", &format!("kkv{}n{id}", self.tag)]);
        }
        for ns in self.netns.values() {
            let _ = run(&["ip", "netns", "del", ns]);
        }
        let _ = run(&["ip", "link", "del", &self.bridge]);
    }
}
