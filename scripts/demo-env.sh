# Source this to use the demo's tools by name: source scripts/demo-env.sh
_enclave_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export ENCLAVE_POLICIES=${ENCLAVE_POLICIES:-$_enclave_root/policies}
export ENCLAVE_STATE_DIR=${ENCLAVE_STATE_DIR:-$_enclave_root/var/demo}
export PATH=${ENCLAVE_BIN:-$_enclave_root/build/release/bin}:$PATH  # ENCLAVE_BIN: another build
unset _enclave_root
