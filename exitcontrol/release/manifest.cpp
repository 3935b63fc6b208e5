#include "exitcontrol/release/manifest.hpp"

#include <algorithm>
#include <set>

#include "common/ed25519.hpp"
#include "exitcontrol/release/tar.hpp"

namespace enclave::exitcontrol::release {

namespace {

using nlohmann::json;

constexpr int kMaxDepth = 64;

bool is_sha256_hex(std::string_view text) {
  return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

Unexpected<Error> invalid(const std::string& field, const std::string& why) {
  return fail(Errc::kInvalidArgument, "manifest " + field + ": " + why);
}

Status check_text(const std::string& field, std::string_view value, bool required) {
  if (required && value.empty()) return invalid(field, "missing");
  if (!is_valid_utf8(value)) return invalid(field, "not UTF-8");
  return {};
}

// Strict UTF-8 throughout, or the type_error nlohmann throws for a string that is not.
Expected<std::string> dump_strict(const json& value, const std::string& field) {
  try {
    return value.dump(-1, ' ', false, json::error_handler_t::strict);
  } catch (const json::type_error& e) {
    return fail(Errc::kInvalidArgument, "manifest " + field + ": " + e.what());
  }
}

json to_json(const Manifest& m) {
  json files = json::array();
  for (const auto& f : m.files) {
    json decisions = json::array();
    for (const auto& d : f.decisions) {
      decisions.push_back(
          {{"at", d.at}, {"comment", d.comment}, {"decision", d.decision}, {"steward", d.steward}});
    }
    files.push_back({{"decisions", std::move(decisions)},
                     {"engine", f.engine},
                     {"name", f.name},
                     {"sha256", f.sha256},
                     {"size", f.size},
                     {"version", f.version}});
  }
  json out = {{"created_at", m.created_at}, {"files", std::move(files)},
              {"format", kManifestFormat},  {"justification", m.justification},
              {"project", m.project},       {"release", m.release},
              {"request", m.request},       {"requester", m.requester},
              {"signer", m.signer}};
  if (!m.organisation.empty()) out["organisation"] = m.organisation;
  return out;
}

// Field readers for parse_manifest: each names the field it refuses.
Unexpected<Error> corrupt(const std::string& field, const std::string& why) {
  return fail(Errc::kCorrupt, "manifest.json " + field + ": " + why);
}

Status read_text(const json& object, const char* key, const std::string& where, std::string& out,
                 bool optional = false) {
  const auto it = object.find(key);
  if (it == object.end()) return optional ? Status{} : corrupt(where + key, "missing");
  if (!it->is_string()) return corrupt(where + key, "not a string");
  out = it->get<std::string>();
  return {};
}

Status read_files(const json& list, std::vector<ManifestFile>& out) {
  if (!list.is_array()) return corrupt("files", "not an array");
  for (std::size_t i = 0; i < list.size(); ++i) {
    const json& f = list[i];
    const std::string where = "files[" + std::to_string(i) + "].";
    if (!f.is_object()) return corrupt(where.substr(0, where.size() - 1), "not an object");
    ManifestFile file;
    ENCLAVE_TRY(read_text(f, "name", where, file.name));
    ENCLAVE_TRY(read_text(f, "sha256", where, file.sha256));
    ENCLAVE_TRY(read_text(f, "version", where, file.version));
    const auto size = f.find("size");
    if (size == f.end() || !size->is_number_unsigned()) {
      return corrupt(where + "size", "missing or not a non-negative integer");
    }
    file.size = size->get<std::uint64_t>();
    const auto engine = f.find("engine");
    if (engine == f.end()) return corrupt(where + "engine", "missing");
    file.engine = *engine;
    const auto decisions = f.find("decisions");
    if (decisions == f.end() || !decisions->is_array()) {
      return corrupt(where + "decisions", "missing or not an array");
    }
    for (std::size_t j = 0; j < decisions->size(); ++j) {
      const json& d = (*decisions)[j];
      const std::string at = where + "decisions[" + std::to_string(j) + "].";
      if (!d.is_object()) return corrupt(at.substr(0, at.size() - 1), "not an object");
      ManifestDecision decision;
      ENCLAVE_TRY(read_text(d, "steward", at, decision.steward));
      ENCLAVE_TRY(read_text(d, "decision", at, decision.decision));
      ENCLAVE_TRY(read_text(d, "comment", at, decision.comment));
      ENCLAVE_TRY(read_text(d, "at", at, decision.at));
      file.decisions.push_back(std::move(decision));
    }
    out.push_back(std::move(file));
  }
  return {};
}

}  // namespace

Status validate_manifest(const Manifest& m) {
  ENCLAVE_TRY(check_text("release", m.release, true));
  ENCLAVE_TRY(check_text("request", m.request, true));
  ENCLAVE_TRY(check_text("project", m.project, true));
  ENCLAVE_TRY(check_text("requester", m.requester, true));
  ENCLAVE_TRY(check_text("created_at", m.created_at, true));
  ENCLAVE_TRY(check_text("organisation", m.organisation, false));
  ENCLAVE_TRY(check_text("justification", m.justification, false));
  ENCLAVE_TRY(check_text("signer", m.signer, false));
  if (m.files.empty()) return invalid("files", "a release has at least one file");
  std::set<std::string_view> names;
  for (std::size_t i = 0; i < m.files.size(); ++i) {
    const ManifestFile& f = m.files[i];
    const std::string at = "files[" + std::to_string(i) + "].";
    if (Status ok = check_member_name(f.name); !ok) return invalid(at + "name", ok.error().message);
    if (f.name == kManifestMember || f.name == kSignatureMember || f.name == kPublicKeyMember) {
      return invalid(at + "name", "\"" + f.name + "\" is the name of the bundle's own " +
                                      "member; rename the file");
    }
    if (!is_valid_utf8(f.name)) return invalid(at + "name", "not UTF-8");
    if (!names.insert(f.name).second) return invalid(at + "name", f.name + " is named twice");
    if (!is_sha256_hex(f.sha256)) {
      return invalid(at + "sha256", "\"" + f.sha256.substr(0, 80) + "\" is not 64 lowercase hex");
    }
    if (f.size > kTarMaxNumber) return invalid(at + "size", "larger than a bundle member may be");
    if (f.version != "original" && f.version != "safe") {
      return invalid(at + "version", "\"" + f.version.substr(0, 80) + "\", not original or safe");
    }
    if (!f.engine.is_object()) return invalid(at + "engine", "not an object");
    if (auto dumped = dump_strict(f.engine, at + "engine"); !dumped) return error_of(dumped);
    for (std::size_t j = 0; j < f.decisions.size(); ++j) {
      const ManifestDecision& d = f.decisions[j];
      const std::string dat = at + "decisions[" + std::to_string(j) + "].";
      ENCLAVE_TRY(check_text(dat + "steward", d.steward, true));
      ENCLAVE_TRY(check_text(dat + "comment", d.comment, false));
      ENCLAVE_TRY(check_text(dat + "at", d.at, true));
      if (d.decision != "approve" && d.decision != "reject") {
        return invalid(dat + "decision",
                       "\"" + d.decision.substr(0, 80) + "\", not approve or reject");
      }
    }
  }
  return {};
}

Expected<std::string> manifest_json(const Manifest& manifest) {
  ENCLAVE_TRY(validate_manifest(manifest));
  return dump_strict(to_json(manifest), "");
}

Expected<Manifest> parse_manifest(ByteSpan bytes) {
  // Serialising is recursive: nesting past the bound is dropped while parsing and refused.
  bool too_deep = false;
  const json::parser_callback_t bound = [&too_deep](int depth, json::parse_event_t, json&) {
    if (depth <= kMaxDepth) return true;
    too_deep = true;
    return false;
  };
  const json doc = json::parse(bytes.begin(), bytes.end(), bound, /*allow_exceptions=*/false);
  if (too_deep) {
    return fail(Errc::kCorrupt,
                "manifest.json: nested deeper than " + std::to_string(kMaxDepth) + " levels");
  }
  if (doc.is_discarded()) return fail(Errc::kCorrupt, "manifest.json: not JSON (or not UTF-8)");
  if (!doc.is_object()) return fail(Errc::kCorrupt, "manifest.json: not a JSON object");
  std::string format;
  ENCLAVE_TRY(read_text(doc, "format", "", format));
  if (format != kManifestFormat) {
    return corrupt("format", "\"" + format.substr(0, 80) + "\", this build reads " +
                                 std::string(kManifestFormat));
  }
  Manifest m;
  ENCLAVE_TRY(read_text(doc, "release", "", m.release));
  ENCLAVE_TRY(read_text(doc, "request", "", m.request));
  ENCLAVE_TRY(read_text(doc, "project", "", m.project));
  ENCLAVE_TRY(read_text(doc, "requester", "", m.requester));
  ENCLAVE_TRY(read_text(doc, "organisation", "", m.organisation, /*optional=*/true));
  ENCLAVE_TRY(read_text(doc, "justification", "", m.justification));
  ENCLAVE_TRY(read_text(doc, "created_at", "", m.created_at));
  ENCLAVE_TRY(read_text(doc, "signer", "", m.signer));
  const auto files = doc.find("files");
  if (files == doc.end()) return corrupt("files", "missing");
  ENCLAVE_TRY(read_files(*files, m.files));
  if (Status ok = validate_manifest(m); !ok) {
    return fail(Errc::kCorrupt, "manifest.json: " + ok.error().message);
  }
  return m;
}

Expected<SignedManifest> sign_manifest(Manifest manifest, EVP_PKEY* signing_key) {
  auto public_key = crypto::ed25519_public_key(signing_key);
  if (!public_key) return error_of(public_key);
  manifest.signer = hex_encode(*public_key);
  auto json_bytes = manifest_json(manifest);
  if (!json_bytes) return error_of(json_bytes);
  auto signature = crypto::ed25519_sign(signing_key, as_bytes(*json_bytes));
  if (!signature) return error_of(signature);
  return SignedManifest{std::move(manifest), std::move(json_bytes).value(), hex_encode(*signature)};
}

}  // namespace enclave::exitcontrol::release
