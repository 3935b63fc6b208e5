// enclavectl ca | gateway cert | device | user | site | project | enrolment: the local CA (files
// under the state directory, made here) and the registry (enclave-sessiond's registry.*
// methods, methods.hpp).
#include <unistd.h>

#include <iostream>

#include "common/files.hpp"
#include "common/x509.hpp"
#include "enclavectl/commands.hpp"
#include "sessionmgr/core/registry.hpp"
#include "sessionmgr/service/methods.hpp"

namespace enclave::ctl {

namespace {

namespace methods = sessionmgr::methods;
namespace fs = std::filesystem;
using nlohmann::json;

// The CA's key lives beside its certificate: keys/ca/ca.crt and keys/ca/ca.key.
fs::path ca_key_of(const fs::path& certificate) {
  return certificate.parent_path() / "ca.key";
}

std::string joined(const json& list) {
  std::string out;
  if (!list.is_array()) return "-";
  for (const auto& item : list) {
    out += (out.empty() ? "" : ",") + (item.is_string() ? item.get<std::string>() : item.dump());
  }
  return out.empty() ? "-" : out;
}

void print_table(cli::TextTable& table, const char* none) {
  if (table.empty()) {
    std::cout << none << "\n";
  } else {
    table.print(std::cout);
  }
}

// A subcommand whose callback calls one registry method with the params `make` builds.
template <class Make, class Show>
void on_call(CLI::App* command, Context& ctx, const char* method, Make make, Show show) {
  command->callback(
      [&ctx, method, make, show] { ctx.exit_code = call_sessiond(ctx, method, make(), show); });
}

std::string default_host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

// ---- ca, gateway cert ---------------------------------------------------------------------

void add_ca_commands(CLI::App& app, Context& ctx) {
  auto* ca = app.add_subcommand("ca", "the local CA that issues device and gateway certificates");
  ca->require_subcommand(1);
  auto name = std::make_shared<std::string>("enclave local CA");
  auto* init = ca->add_subcommand(
      "init", "create the CA (Ed25519, ten years) at [sessiond] ca_certificate; never overwrites");
  init->add_option("--name", *name, "the CA's common name");
  init->callback([&ctx, name] {
    auto policy = load_sessions_policy(ctx);
    if (!policy) return void(ctx.exit_code = cli::report_error(policy.error()));
    const fs::path cert = policy->sessiond.ca_certificate;
    const fs::path key = ca_key_of(cert);
    if (auto made = x509::create_ca(cert, key, *name); !made) {
      return void(ctx.exit_code = cli::report_error(made.error()));
    }
    auto digest = x509::certificate_sha256_hex_of_file(cert);
    if (ctx.json) {
      std::cout << json{{"certificate", cert.string()},
                        {"private_key", key.string()},
                        {"certificate_sha256", digest ? *digest : ""}}
                       .dump(2)
                << "\n";
    } else {
      std::cout << "created the local CA \"" << *name << "\"\n"
                << "certificate  " << cert.string() << "\n"
                << "private key  " << key.string() << " (0600: keep it off backups you do not "
                << "trust)\n"
                << "sha256       " << (digest ? *digest : "-") << "\n";
    }
  });
}

struct GatewayCertOptions {
  std::vector<std::string> names;
  int days = 825;
  bool replace = false;
};

void add_gateway_commands(CLI::App& app, Context& ctx) {
  auto* gateway = app.add_subcommand("gateway", "the gateway's certificate");
  gateway->require_subcommand(1);
  auto o = std::make_shared<GatewayCertOptions>();
  auto* cert = gateway->add_subcommand(
      "cert", "issue the gateway's server certificate (RDP and login API) from the local CA");
  cert->add_option("--name", o->names,
                   "a DNS name or IP address kiosks reach the gateway by (repeat; default: this "
                   "host's name)");
  cert->add_option("--days", o->days, "validity in days")->check(CLI::Range(1, 3652));
  cert->add_flag("--replace", o->replace,
                 "replace an existing certificate (kiosks pinning the old one need new kits)");
  cert->callback([&ctx, o] {
    auto fail_with = [&ctx](const Error& e) { ctx.exit_code = cli::report_error(e); };
    auto policy = load_sessions_policy(ctx);
    if (!policy) return fail_with(policy.error());
    auto files = gateway_files(ctx);
    if (!files) return fail_with(files.error());
    if (fs::exists(files->certificate) && !o->replace) {
      return fail_with({Errc::kAlreadyExists,
                        files->certificate.string() +
                            " exists; --replace issues a new one (kiosks pin the old one)"});
    }
    auto ca = x509::CertificateAuthority::load(policy->sessiond.ca_certificate,
                                               ca_key_of(policy->sessiond.ca_certificate));
    if (!ca) return fail_with(ca.error());
    x509::CertificateRequest request;
    request.purpose = x509::Purpose::kServer;
    request.days = o->days;
    std::vector<std::string> names = o->names;
    if (names.empty()) names.push_back(default_host_name());
    for (const auto& n : names) {
      if (sessionmgr::registry::IpAddress::parse(n)) {
        request.ip_addresses.push_back(n);
      } else {
        request.dns_names.push_back(n);
      }
    }
    request.common_name = names.front();
    auto issued = ca->issue(request);
    if (!issued) return fail_with(issued.error());
    std::error_code ec;
    fs::create_directories(files->private_key.parent_path(), ec);
    fs::create_directories(files->certificate.parent_path(), ec);
    if (auto w = write_file_atomically(files->private_key, issued->private_key_pem, 0600); !w) {
      return fail_with(w.error());
    }
    if (auto w = write_file_atomically(files->certificate, issued->certificate_pem, 0644); !w) {
      return fail_with(w.error());
    }
    auto pin = x509::spki_sha256_hex_of_file(files->certificate);
    auto fingerprint = x509::xfreerdp_fingerprint_of_file(files->certificate);
    if (ctx.json) {
      std::cout << json{{"certificate", files->certificate.string()},
                        {"private_key", files->private_key.string()},
                        {"names", names},
                        {"pin_sha256", pin ? *pin : ""},
                        {"xfreerdp_fingerprint", fingerprint ? *fingerprint : ""}}
                       .dump(2)
                << "\n";
    } else {
      std::cout << "issued the gateway certificate for " << joined(json(names)) << "\n"
                << "certificate  " << files->certificate.string() << "\n"
                << "private key  " << files->private_key.string() << "\n"
                << "pin_sha256   " << (pin ? *pin : "-") << "\n"
                << "restart enclave-gatewayd to serve it\n";
    }
  });
}

// ---- devices ------------------------------------------------------------------------------

struct KitOptions {
  std::string site, id, reason;
  fs::path out;
  int days = 825;
};

// Writes the kit's files; on any failure removes what it wrote.
class KitWriter {
 public:
  explicit KitWriter(fs::path dir) : dir_(std::move(dir)) {}
  Status write(const std::string& name, std::string_view content, mode_t mode) {
    Status w = write_file_atomically(dir_ / name, content, mode);
    if (w) written_.push_back(dir_ / name);
    return w;
  }
  void undo() {
    std::error_code ec;
    for (const auto& p : written_) fs::remove(p, ec);
    written_.clear();
  }

 private:
  fs::path dir_;
  std::vector<fs::path> written_;
};

void add_device_commands(CLI::App& app, Context& ctx) {
  auto* device = app.add_subcommand("device", "kitted thin clients (enclave-sessiond registry)");
  device->require_subcommand(1);
  auto o = std::make_shared<KitOptions>();

  auto* kit = device->add_subcommand(
      "kit", "issue a device key and certificate for a kiosk of SITE, register it, write the kit");
  kit->add_option("site", o->site, "the site the kiosk stands in")->required();
  kit->add_option("--id", o->id, "the device id (the certificate's CN)")->required();
  kit->add_option("--out", o->out, "directory for device.key, device.crt, ca.crt, gateway.pin")
      ->required();
  kit->add_option("--days", o->days, "validity in days")->check(CLI::Range(1, 3652));
  kit->callback([&ctx, o] {
    auto fail_with = [&ctx](const Error& e) { ctx.exit_code = cli::report_error(e); };
    if (!sessionmgr::registry::is_object_id(o->id)) {
      return fail_with({Errc::kInvalidArgument,
                        "\"" + o->id + "\" is not a device id ([a-z0-9][a-z0-9_.-]{0,63})"});
    }
    auto policy = load_sessions_policy(ctx);
    if (!policy) return fail_with(policy.error());
    const fs::path ca_cert = policy->sessiond.ca_certificate;
    auto ca = x509::CertificateAuthority::load(ca_cert, ca_key_of(ca_cert));
    if (!ca) return fail_with(ca.error());
    auto gateway = gateway_files(ctx);
    if (!gateway) return fail_with(gateway.error());
    auto pin = x509::spki_sha256_hex_of_file(gateway->certificate);
    auto fingerprint = x509::xfreerdp_fingerprint_of_file(gateway->certificate);
    if (!pin || !fingerprint) {
      return fail_with({Errc::kNotFound, "no gateway certificate at " +
                                             gateway->certificate.string() +
                                             " to pin (enclavectl gateway cert issues it)"});
    }
    for (const char* name : {"device.key", "device.crt"}) {
      if (fs::exists(o->out / name)) {
        return fail_with({Errc::kAlreadyExists,
                          (o->out / name).string() + " exists: a kit is never overwritten"});
      }
    }
    auto issued = ca->issue({x509::Purpose::kClient, o->id, {}, {}, o->days});
    if (!issued) return fail_with(issued.error());
    std::error_code ec;
    if (!fs::exists(o->out)) {
      fs::create_directories(o->out, ec);
      fs::permissions(o->out, fs::perms::owner_all, fs::perm_options::replace, ec);
    }
    KitWriter kit_files(o->out);
    const std::string pin_file =
        "pin_sha256 = \"" + *pin + "\"\nxfreerdp_fingerprint = \"" + *fingerprint + "\"\n";
    const std::string ca_pem = ca->certificate_pem();
    for (auto [name, content, mode] : {std::tuple<const char*, std::string_view, mode_t>{
                                           "device.key", issued->private_key_pem, 0600},
                                       {"device.crt", issued->certificate_pem, 0644},
                                       {"ca.crt", ca_pem, 0644},
                                       {"gateway.pin", pin_file, 0644}}) {
      if (auto w = kit_files.write(name, content, mode); !w) {
        kit_files.undo();
        return fail_with(w.error());
      }
    }
    const json params = {
        {"device", o->id}, {"site", o->site}, {"certificate", issued->certificate_pem}};
    ctx.exit_code = call_sessiond(ctx, methods::kRegistryDeviceAdd, params, [o](const json& r) {
      std::cout << "kitted device " << cli::field(r, "device") << " of site "
                << cli::field(r, "site") << " in " << o->out.string() << "\n"
                << "serial       " << cli::field(r, "serial") << "\n"
                << "certificate  sha256 " << cli::field(r, "certificate_sha256") << "\n"
                << "copy the directory to the kiosk; device.key stays secret (0600)\n";
    });
    if (ctx.exit_code != 0) kit_files.undo();  // not registered: no kit that cannot log in
  });

  auto site = std::make_shared<std::string>();
  auto* list = device->add_subcommand("list", "registered devices");
  list->add_option("--site", *site, "only this site's");
  on_call(
      list, ctx, methods::kRegistryDeviceList,
      [site] {
        return site->empty() ? json::object() : json{{"site", *site}};
      },
      [](const json& r) {
        cli::TextTable table({"DEVICE", "SITE", "STATE", "SERIAL", "CERT SHA-256", "CREATED"});
        for (const auto& d : r["devices"]) {
          table.add({cli::field(d, "device"), cli::field(d, "site"), cli::field(d, "state"),
                     cli::field(d, "serial"),
                     cli::field(d, "certificate_sha256").substr(0, 16) + "...",
                     cli::field(d, "created_at")});
        }
        print_table(table, "no devices");
      });

  auto* revoke = device->add_subcommand(
      "revoke", "revoke a device: the gateway refuses its certificate; its prints are deleted");
  revoke->add_option("device", o->id, "device id")->required();
  revoke->add_option("--reason", o->reason, "why (recorded in the audit trail)");
  on_call(
      revoke, ctx, methods::kRegistryDeviceRevoke,
      [o] {
        return json{{"device", o->id}, {"reason", o->reason}};
      },
      [](const json& r) { std::cout << "revoked device " << cli::field(r, "device") << "\n"; });
}

// ---- users --------------------------------------------------------------------------------

struct UserOptions {
  std::string id, name;
  std::vector<std::string> roles;
};

void add_user_commands(CLI::App& app, Context& ctx) {
  auto* user = app.add_subcommand("user", "registry users and their roles (enclave-sessiond)");
  user->require_subcommand(1);
  auto o = std::make_shared<UserOptions>();
  const std::string roles_help = "analyst, steward, auditor, site_manager or operator";
  auto show_user = [](const char* what) {
    return [what](const json& r) {
      std::cout << what << " user " << cli::field(r, "user") << " (roles: " << joined(r["roles"])
                << (r.value("disabled", false) ? "; disabled" : "") << ")\n";
    };
  };

  auto* add = user->add_subcommand("add", "add a user (the login name PAM knows)");
  add->add_option("user", o->id, "login name")->required();
  add->add_option("--name", o->name, "the person's name");
  add->add_option("--role", o->roles, roles_help + " (repeat)");
  on_call(
      add, ctx, methods::kRegistryUserAdd,
      [o] {
        return json{{"user", o->id}, {"name", o->name}, {"roles", o->roles}};
      },
      show_user("added"));

  auto* roles = user->add_subcommand("roles", "set a user's roles (replacing them)");
  roles->add_option("user", o->id, "login name")->required();
  roles->add_option("roles", o->roles, roles_help);
  on_call(
      roles, ctx, methods::kRegistryUserSetRoles,
      [o] {
        return json{{"user", o->id}, {"roles", o->roles}};
      },
      show_user("updated"));

  auto* disable = user->add_subcommand("disable", "disable a user: no compartment, no approval");
  disable->add_option("user", o->id, "login name")->required();
  on_call(
      disable, ctx, methods::kRegistryUserDisable,
      [o] {
        return json{{"user", o->id}};
      },
      show_user("disabled"));

  auto* list = user->add_subcommand("list", "every user");
  on_call(
      list, ctx, methods::kRegistryUserList, [] { return json::object(); },
      [](const json& r) {
        cli::TextTable table({"USER", "NAME", "ROLES", "DISABLED", "CREATED"});
        for (const auto& u : r["users"]) {
          table.add({cli::field(u, "user"), cli::field(u, "name"), joined(u["roles"]),
                     u.value("disabled", false) ? "yes" : "no", cli::field(u, "created_at")});
        }
        print_table(table, "no users");
      });
}

// ---- sites --------------------------------------------------------------------------------

struct SiteOptions {
  std::string id, name, ike_identity, site_class, until, audited, reason;
  std::vector<std::string> pools;
};

void add_site_commands(CLI::App& app, Context& ctx) {
  auto* site = app.add_subcommand("site", "remote security rooms (enclave-sessiond registry)");
  site->require_subcommand(1);
  auto o = std::make_shared<SiteOptions>();
  auto show_site = [](const json& r) {
    std::cout << "site " << cli::field(r, "site") << ": " << cli::field(r, "state")
              << (r.value("may_log_in", false) ? ", may log in until " + cli::field(r, "expires_at")
                                               : ", no login")
              << "\n";
  };

  auto* add = site->add_subcommand("add", "register a site (no login until approved)");
  add->add_option("site", o->id, "site id")->required();
  add->add_option("--name", o->name, "the room's name")->required();
  add->add_option("--ike-id", o->ike_identity, "its IKE identity, as swanctl --list-sas shows it")
      ->required();
  add->add_option("--pool", o->pools, "a virtual-IP pool of its VPN, CIDR (repeat)")->required();
  add->add_option("--class", o->site_class, "its site class (default security-room)");
  on_call(
      add, ctx, methods::kRegistrySiteAdd,
      [o] {
        json p = {{"site", o->id},
                  {"name", o->name},
                  {"ike_identity", o->ike_identity},
                  {"pools", o->pools}};
        if (!o->site_class.empty()) p["site_class"] = o->site_class;
        return p;
      },
      show_site);

  auto* approve = site->add_subcommand(
      "approve", "approve (or renew) a site after its security audit, until a date");
  approve->add_option("site", o->id, "site id")->required();
  approve->add_option("--until", o->until, "the approval's expiry: 2027-03-31 or RFC 3339")
      ->required();
  approve->add_option("--audited", o->audited, "the security audit's date (default: today)");
  on_call(
      approve, ctx, methods::kRegistrySiteApprove,
      [o] {
        json p = {{"site", o->id}, {"expires", o->until}};
        if (!o->audited.empty()) p["audited"] = o->audited;
        return p;
      },
      show_site);

  for (auto [name, method, help] :
       {std::tuple{"suspend", methods::kRegistrySiteSuspend,
                   "suspend an approved site: no login until approved again"},
        std::tuple{"revoke", methods::kRegistrySiteRevoke,
                   "revoke a site for good (its pools become free)"}}) {
    auto* command = site->add_subcommand(name, help);
    command->add_option("site", o->id, "site id")->required();
    command->add_option("--reason", o->reason, "why (recorded in the audit trail)");
    on_call(
        command, ctx, method,
        [o] {
          return json{{"site", o->id}, {"reason", o->reason}};
        },
        show_site);
  }

  auto* list = site->add_subcommand("list", "every site and whether it may log in now");
  on_call(
      list, ctx, methods::kRegistrySiteList, [] { return json::object(); },
      [](const json& r) {
        cli::TextTable table(
            {"SITE", "NAME", "STATE", "LOGIN", "EXPIRES", "POOLS", "IKE IDENTITY", "CLASS"});
        for (const auto& s : r["sites"]) {
          table.add({cli::field(s, "site"), cli::field(s, "name"), cli::field(s, "state"),
                     s.value("may_log_in", false) ? "yes" : "no", cli::field(s, "expires_at"),
                     joined(s["pools"]), cli::field(s, "ike_identity"),
                     cli::field(s, "site_class")});
        }
        print_table(table, "no sites");
      });
}

// ---- projects -----------------------------------------------------------------------------

struct ProjectOptions {
  std::string id, title, from, until, user, compartment;
};

void add_project_commands(CLI::App& app, Context& ctx) {
  auto* project =
      app.add_subcommand("project", "approved research projects (enclave-sessiond registry)");
  project->require_subcommand(1);
  auto o = std::make_shared<ProjectOptions>();
  auto show_project = [](const json& r) {
    std::cout << "project " << cli::field(r, "project") << ": members " << joined(r["members"])
              << "; compartments " << joined(r["compartments"]) << "\n";
  };

  auto* add = project->add_subcommand("add", "add an approved project and its validity");
  add->add_option("project", o->id, "project id")->required();
  add->add_option("--title", o->title, "its title")->required();
  add->add_option("--from", o->from, "valid from: 2026-04-01 or RFC 3339")->required();
  add->add_option("--until", o->until, "valid until (exclusive)")->required();
  on_call(
      add, ctx, methods::kRegistryProjectAdd,
      [o] {
        return json{{"project", o->id},
                    {"title", o->title},
                    {"valid_from", o->from},
                    {"valid_until", o->until}};
      },
      show_project);

  auto* member = project->add_subcommand("member", "a project's members");
  member->require_subcommand(1);
  for (auto [name, method, help] :
       {std::tuple{"add", methods::kRegistryProjectAddMember, "add a member"},
        std::tuple{"remove", methods::kRegistryProjectRemoveMember, "remove a member"}}) {
    auto* command = member->add_subcommand(name, help);
    command->add_option("project", o->id, "project id")->required();
    command->add_option("user", o->user, "login name")->required();
    on_call(
        command, ctx, method,
        [o] {
          return json{{"project", o->id}, {"user", o->user}};
        },
        show_project);
  }

  auto* grant = project->add_subcommand("grant", "grant a project a compartment");
  grant->add_option("project", o->id, "project id")->required();
  grant->add_option("compartment", o->compartment, "a compartment sessions.toml defines")
      ->required();
  on_call(
      grant, ctx, methods::kRegistryProjectGrant,
      [o] {
        return json{{"project", o->id}, {"compartment", o->compartment}};
      },
      show_project);

  auto* list = project->add_subcommand("list", "every project");
  on_call(
      list, ctx, methods::kRegistryProjectList, [] { return json::object(); },
      [](const json& r) {
        cli::TextTable table(
            {"PROJECT", "TITLE", "FROM", "UNTIL", "VALID", "MEMBERS", "COMPARTMENTS"});
        for (const auto& p : r["projects"]) {
          table.add({cli::field(p, "project"), cli::field(p, "title"), cli::field(p, "valid_from"),
                     cli::field(p, "valid_until"), p.value("valid_now", false) ? "yes" : "no",
                     joined(p["members"]), joined(p["compartments"])});
        }
        print_table(table, "no projects");
      });
}

// ---- enrolments ---------------------------------------------------------------------------

struct EnrolmentOptions {
  std::string user, device, approver, reason;
};

void add_enrolment_commands(CLI::App& app, Context& ctx) {
  auto* enrolment = app.add_subcommand(
      "enrolment", "fingerprint enrolments per user and kiosk (enclave-sessiond registry)");
  enrolment->require_subcommand(1);
  auto o = std::make_shared<EnrolmentOptions>();
  auto show = [](const json& r) {
    std::cout << "enrolment of " << cli::field(r, "user") << " on " << cli::field(r, "device")
              << ": " << cli::field(r, "state") << " (approved by " << cli::field(r, "approved_by")
              << ")\n";
  };

  auto* approve = enrolment->add_subcommand(
      "approve", "let USER enrol a finger on DEVICE's reader (again: re-enrol)");
  approve->add_option("user", o->user, "login name")->required();
  approve->add_option("device", o->device, "device id")->required();
  approve->add_option("--by", o->approver, "the approving steward (not the user)")->required();
  on_call(
      approve, ctx, methods::kRegistryEnrolmentApprove,
      [o] {
        return json{{"user", o->user}, {"device", o->device}, {"approver", o->approver}};
      },
      show);

  auto* revoke = enrolment->add_subcommand("revoke", "revoke an enrolment and delete its print");
  revoke->add_option("user", o->user, "login name")->required();
  revoke->add_option("device", o->device, "device id")->required();
  revoke->add_option("--reason", o->reason, "why (recorded in the audit trail)");
  on_call(
      revoke, ctx, methods::kRegistryEnrolmentRevoke,
      [o] {
        return json{{"user", o->user}, {"device", o->device}, {"reason", o->reason}};
      },
      show);

  auto* list = enrolment->add_subcommand("list", "enrolments, newest first");
  list->add_option("--user", o->user, "only this user's");
  on_call(
      list, ctx, methods::kRegistryEnrolmentList,
      [o] {
        return o->user.empty() ? json::object() : json{{"user", o->user}};
      },
      [](const json& r) {
        cli::TextTable table(
            {"ID", "USER", "DEVICE", "STATE", "APPROVED BY", "APPROVED", "ENROLLED", "PRINT"});
        for (const auto& e : r["enrolments"]) {
          table.add({cli::field(e, "id"), cli::field(e, "user"), cli::field(e, "device"),
                     cli::field(e, "state"), cli::field(e, "approved_by"),
                     cli::field(e, "approved_at"), cli::field(e, "enrolled_at"),
                     cli::field(e, "print_id")});
        }
        print_table(table, "no enrolments");
      });
}

}  // namespace

Expected<GatewayFiles> gateway_files(const Context& ctx) {
  auto document = cli::load_policy(ctx.common, "gateway.toml");
  if (!document) return error_of(document);
  auto gateway = document->root().table("gateway");
  if (!gateway) return error_of(gateway);
  std::string certificate = "keys/gateway.crt", key = "keys/gateway.key";
  if (*gateway) {
    auto c = (*gateway)->string_or("certificate", certificate);
    if (!c) return error_of(c);
    auto k = (*gateway)->string_or("private_key", key);
    if (!k) return error_of(k);
    certificate = *c;
    key = *k;
  }
  return GatewayFiles{under_state_dir(ctx.common.state_dir, certificate),
                      under_state_dir(ctx.common.state_dir, key)};
}

void add_registry_commands(CLI::App& app, Context& ctx) {
  add_ca_commands(app, ctx);
  add_gateway_commands(app, ctx);
  add_device_commands(app, ctx);
  add_user_commands(app, ctx);
  add_site_commands(app, ctx);
  add_project_commands(app, ctx);
  add_enrolment_commands(app, ctx);
}

}  // namespace enclave::ctl
