#!/usr/bin/env bash
# TL-FIF image, step 1: system packages, the two Python venvs (vLLM, watcher), systemd/supervisord/nginx files.
# Runs as root on the build instance (Packer); the files are in /tmp/tl-fif-image, the code in /tmp/tl-fif-src.
set -euxo pipefail
: "${VLLM_VERSION:?}" "${SERVED_MODEL_NAME:?}"
IMAGE=/tmp/tl-fif-image
SRC=/tmp/tl-fif-src

apt-get update -qq
apt-get install -y -qq --no-install-recommends nginx supervisor python3-venv python3-pip openssl curl ca-certificates \
  redis-server
# redis-server is off: only the DR test's node starts it (its user data), so that node never joins the production queue.
systemctl disable --now redis-server.service

# One unprivileged user runs vLLM and the watcher.
id tlfif >/dev/null 2>&1 || useradd --system --home-dir /var/lib/tl-fif --create-home --shell /usr/sbin/nologin tlfif
install -d -m 0755 /opt/tl-fif /opt/tl-fif/bin /opt/tl-fif/lib /opt/tl-fif/models /etc/tl-fif
install -d -m 0750 -o root -g tlfif /etc/tl-fif/tls
install -d -m 0750 -o tlfif -g tlfif /var/log/tl-fif /var/lib/tl-fif/adapters

# vLLM, pinned (RQL 7.1 vllm_version), in its own venv: its torch/openai pins never meet the watcher's.
python3 -m venv /opt/vllm/venv
/opt/vllm/venv/bin/pip install --quiet --upgrade pip
/opt/vllm/venv/bin/pip install --quiet "vllm==${VLLM_VERSION}"
/opt/vllm/venv/bin/python -c "import vllm; print('vllm', vllm.__version__)"

# The watcher: tlfif_common + tlfif_watcher from this repository, on a venv with requirements-watcher.txt.
python3 -m venv /opt/tl-fif/venv
/opt/tl-fif/venv/bin/pip install --quiet --upgrade pip
/opt/tl-fif/venv/bin/pip install --quiet -r "$IMAGE/requirements-watcher.txt"
cp -r "$SRC/tlfif_common" "$SRC/tlfif_watcher" /opt/tl-fif/lib/
find /opt/tl-fif/lib -name __pycache__ -prune -exec rm -rf {} +
site=$(/opt/tl-fif/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo /opt/tl-fif/lib > "$site/tl-fif.pth"
/opt/tl-fif/venv/bin/python -c "import tlfif_watcher, tlfif_common.names; print('watcher importable')"

# systemd: vLLM (RQL 5.2 run_vllm.service) and the first-boot script; supervisord: the watcher (RQL 5.5).
install -m 0644 "$IMAGE/run_vllm.service" /etc/systemd/system/run_vllm.service
sed -i "s#@SERVED_MODEL_NAME@#${SERVED_MODEL_NAME}#" /etc/systemd/system/run_vllm.service
install -m 0644 "$IMAGE/tlfif-firstboot.service" /etc/systemd/system/tlfif-firstboot.service
install -m 0755 "$IMAGE/tlfif-firstboot" /opt/tl-fif/bin/tlfif-firstboot
install -m 0755 "$IMAGE/run-watcher" /opt/tl-fif/bin/run-watcher
install -m 0644 "$IMAGE/supervisor-tlfif-watcher.conf" /etc/supervisor/conf.d/tlfif-watcher.conf

# nginx: TLS on 443 in front of vLLM (RQL 5.4); the certificate is made at first boot.
rm -f /etc/nginx/sites-enabled/default
install -m 0644 "$IMAGE/nginx-tl-fif.conf" /etc/nginx/sites-available/tl-fif.conf
ln -sf /etc/nginx/sites-available/tl-fif.conf /etc/nginx/sites-enabled/tl-fif.conf

# SSM agent: the only admin path (RQL 5.7). Ubuntu images ship it as a snap; make sure it is there and on.
if ! snap list amazon-ssm-agent >/dev/null 2>&1; then snap install amazon-ssm-agent --classic; fi
systemctl enable snap.amazon-ssm-agent.amazon-ssm-agent.service

systemctl daemon-reload
systemctl enable run_vllm.service tlfif-firstboot.service nginx.service supervisor.service

# Cold start budget (RQL 5): nothing else competes at boot. The image is rebuilt by the pipeline for updates.
systemctl disable apt-daily.timer apt-daily-upgrade.timer unattended-upgrades.service || true
