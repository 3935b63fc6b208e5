// enclave-gatewayd: relays RDP from analysts' clients to their desktops (run), or creates the
// certificate kiosks pin (keygen).
#include <sys/resource.h>

#include <iostream>

#include "audit/client/appender.hpp"
#include "common/cli.hpp"
#include "common/log.hpp"
#include "common/x509.hpp"
#include "gateway/service/gateway.hpp"

int main(int argc, char** argv) {
  using namespace enclave;
  cli::DaemonCommand command("enclave-gatewayd",
                             "the enclave's front door and channel-filtering RDP relay");
  CLI::App& app = command.app;
  const cli::CommonOptions& common = command.common;
  auto* run = app.add_subcommand("run", "relay RDP until SIGTERM");
  auto* keygen = app.add_subcommand("keygen", "create the gateway's key and certificate");
  std::string name = "enclave-gateway";
  keygen->add_option("--name", name, "the certificate's common name");
  bool force = false;
  keygen->add_flag("--force", force, "replace an existing key");
  if (auto done = command.start(argc, argv)) return *done;

  auto policy = cli::load_policy(common, "gateway.toml");
  if (!policy) return cli::report_error(policy.error());
  auto config = gateway::load_gateway_config(*policy, common.state_dir);
  if (!config) return cli::report_error(config.error());

  if (*keygen) {
    if (std::filesystem::exists(config->private_key) && !force) {
      return cli::report_error(
          {Errc::kAlreadyExists, config->private_key.string() + " exists (--force replaces it)"});
    }
    std::filesystem::create_directories(config->certificate.parent_path());
    if (auto made = x509::generate_self_signed(config->certificate, config->private_key, name);
        !made) {
      return cli::report_error(made.error());
    }
    auto fingerprint = x509::xfreerdp_fingerprint_of_file(config->certificate);
    auto pin = x509::spki_sha256_hex_of_file(config->certificate);
    if (!fingerprint || !pin) return cli::report_error({Errc::kInternal, "cannot read back"});
    std::cout << "certificate: " << config->certificate.string() << "\n"
              << "key:         " << config->private_key.string() << "\n"
              << "pin (SPKI sha256):        " << *pin << "\n"
              << "xfreerdp: /cert:fingerprint:sha256:" << *fingerprint << "\n";
    return 0;
  }
  (void)run;
  // Two descriptors per relayed session: take the whole hard limit.
  if (rlimit files{}; getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  audit::Appender audit(config->auditd_socket);
  auto gateway = gateway::Gateway::create(std::move(config).value(), audit);
  if (!gateway) return cli::report_error(gateway.error());
  if (auto started = (*gateway)->start(); !started) return cli::report_error(started.error());
  (*gateway)->wait_for_signal();
  (*gateway)->stop();
  if (auto flushed = audit.flush(std::chrono::seconds(2)); !flushed) {
    spdlog::warn("audit events not flushed at exit: {}", flushed.error().describe());
  }
  return 0;
}
