#!/usr/bin/env bash
# The demo analyst's system account (run by scripts/run.sh, as root): pam_unix checks its
# password in the demo's login, exactly as a center's pam_unix or pam_sss would. No home, no
# shell (/usr/sbin/nologin): it can do nothing on this machine but be checked. Its password is
# made here once, random, kept in $ENCLAVE_STATE_DIR/demo/demo-analyst.password (0600). An
# account of that name that this script did not make is left alone.
set -euo pipefail
user=demo-analyst
comment="enclave demo analyst"
password_file=$ENCLAVE_STATE_DIR/demo/$user.password
if ! getent passwd "$user" >/dev/null; then
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
    --comment "$comment" "$user"
fi
if [[ $(getent passwd "$user" | cut -d: -f5) != "$comment" ]]; then
  echo "demo-account: an account $user exists that the demo did not make; the demo login" \
    "will ask for its password" >&2
  exit 0
fi
if [[ ! -s $password_file ]]; then
  mkdir -p "$(dirname "$password_file")"
  (umask 077 && openssl rand -base64 12 | tr -d '/+=' >"$password_file")
  echo "$user:$(cat "$password_file")" | chpasswd
fi
