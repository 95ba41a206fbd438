#!/usr/bin/env bash
# TL-FIF image, last step: no sshd (RQL 5.7 - SSM only), no build leftovers, a clean first boot.
set -euxo pipefail
# The running Packer session survives (ssh.service uses KillMode=process); nothing listens on 22 after this.
systemctl disable --now ssh.socket ssh.service 2>/dev/null || true
systemctl mask ssh.socket ssh.service
apt-get purge -y -qq openssh-server
rm -f /home/ubuntu/.ssh/authorized_keys /root/.ssh/authorized_keys
rm -f /etc/tl-fif/tls/*.pem /etc/tl-fif/watcher.env   # made per node at first boot
rm -rf /tmp/tl-fif-image /tmp/tl-fif-src /root/.cache/pip /var/lib/apt/lists/*
apt-get clean
cloud-init clean --logs   # the node's own user data (watcher.env) runs on its first boot
journalctl --rotate && journalctl --vacuum-time=1s || true
