#!/usr/bin/env bash
# Build SIG Network's NetworkPolicy agent, kube-network-policies v0.8.0
# (sigs.k8s.io/kube-network-policies, ./cmd), into
# tests/cluster/bin/kube-network-policies, for the node (`gg-cluster node
# --network-policies`): the node's bridge CNI enforces no NetworkPolicy.
#
# With one patch (patches/kube-network-policies-v0.8.0.patch), because v0.8.0
# as released cannot run here:
#   - it sends packets to userspace with the nftables `queue` expression, and
#     this kernel has no CONFIG_NFT_QUEUE ("Could not process rule: No such
#     file or directory"; its first rule sync failing is then ignored, and it
#     would enforce nothing). --xt-nfqueue uses the iptables NFQUEUE target
#     through nft_compat instead, which this kernel has. The rules, the sets
#     and the policy evaluation in userspace are upstream's, unchanged.
#   - it reads only in-cluster credentials: --kubeconfig is added.
#   - its --disable-nri flag is parsed but never used: it is wired.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=go-tool.sh
. "$here/go-tool.sh"
go_tool kube-network-policies sigs.k8s.io/kube-network-policies@v0.8.0 ./cmd "-s -w" \
  "$here/patches/kube-network-policies-v0.8.0.patch"
