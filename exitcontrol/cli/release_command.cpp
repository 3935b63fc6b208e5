// release verify: what the receiving organisation runs on a bundle it downloaded, with the
// export signing public key it was given out of band. Exit 0 when every file verifies, 1 when
// the bundle fails (named), 2 when it could not check (no such file, a bad key argument).
#include <cctype>
#include <iostream>

#include <nlohmann/json.hpp>

#include "common/bytes.hpp"
#include "common/files.hpp"
#include "exitcontrol/cli/commands.hpp"
#include "exitcontrol/release/bundle.hpp"

namespace enclave::exitcontrol::cli {
namespace {

struct VerifyOptions {
  std::filesystem::path bundle;
  std::string public_key;  // 64 hex digits, or a file holding them (export-signing.pub)
};

Expected<Bytes> public_key_from(const std::string& argument) {
  auto key = hex_decode(argument);
  if (key && key->size() == 32) return std::move(key).value();
  auto text = read_file(argument, 4096);
  if (!text) {
    return fail(text.error().code,
                "--public-key: neither 64 hex digits nor a key file: " + text.error().message);
  }
  std::string_view hex = *text;
  while (!hex.empty() && std::isspace(static_cast<unsigned char>(hex.back()))) hex.remove_suffix(1);
  key = hex_decode(hex);
  if (!key || key->size() != 32) {
    return fail(Errc::kInvalidArgument, "--public-key " + argument +
                                            ": does not hold an Ed25519 public key as 64 hex "
                                            "digits");
  }
  return std::move(key).value();
}

void run_verify(const Context& context, const VerifyOptions& options) {
  auto key = public_key_from(options.public_key);
  if (!key) {
    exit_code() = enclave::cli::report_error(key.error());
    return;
  }
  auto manifest = release::verify_bundle_file(options.bundle, *key);
  if (!manifest) {
    const int code = enclave::cli::report_error(manifest.error());
    exit_code() = manifest.error().code == Errc::kCorrupt ? kExitFail : code;
    return;
  }
  if (context.json) {
    nlohmann::json files = nlohmann::json::array();
    for (const auto& f : manifest->files) {
      files.push_back({{"name", f.name},
                       {"size", f.size},
                       {"sha256", f.sha256},
                       {"version", f.version},
                       {"status", "verified"}});
    }
    std::cout << nlohmann::json{{"bundle", options.bundle.string()},
                                {"release", manifest->release},
                                {"request", manifest->request},
                                {"project", manifest->project},
                                {"requester", manifest->requester},
                                {"organisation", manifest->organisation},
                                {"created_at", manifest->created_at},
                                {"signer", manifest->signer},
                                {"files", files}}
                     .dump(2)
              << "\n";
  } else {
    std::cout << "release " << manifest->release << " of project " << manifest->project
              << " (request " << manifest->request << ", requested by " << manifest->requester
              << ", " << manifest->created_at << ")\n"
              << "manifest signed by " << manifest->signer << "\n";
    enclave::cli::TextTable t({"file", "bytes", "sha256", "version", "status"});
    for (const auto& f : manifest->files) {
      t.add({f.name, std::to_string(f.size), f.sha256, f.version, "verified"});
    }
    t.print(std::cout);
    std::cout << manifest->files.size() << (manifest->files.size() == 1 ? " file" : " files")
              << " verified\n";
  }
  exit_code() = 0;
}

}  // namespace

void add_release(CLI::App& app, Context& context) {
  auto* release = app.add_subcommand("release", "released bundles");
  release->require_subcommand(1);
  auto verify = std::make_shared<VerifyOptions>();
  auto* v = release->add_subcommand(
      "verify", "check a release bundle's signature and every file's hash (for the recipient)");
  v->add_option("bundle", verify->bundle, "the release bundle (.tar)")->required();
  v->add_option("--public-key", verify->public_key,
                "the export signing public key: 64 hex digits or a file holding them")
      ->required();
  v->callback([&context, verify] { run_verify(context, *verify); });
}

}  // namespace enclave::exitcontrol::cli
