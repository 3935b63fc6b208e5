#include "exitcontrol/core/profile.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <memory>
#include <string_view>

#include "common/policy.hpp"

namespace enclave::exitcontrol {

const char* zeros_policy_name(ZerosPolicy policy) {
  switch (policy) {
    case ZerosPolicy::kDisclosive:
      return "disclosive";
    case ZerosPolicy::kAllowed:
      return "allowed";
    case ZerosPolicy::kReview:
      return "review";
  }
  return "unknown";
}

const char* totals_policy_name(TotalsPolicy policy) {
  switch (policy) {
    case TotalsPolicy::kRecompute:
      return "recompute";
    case TotalsPolicy::kAsPublished:
      return "as_published";
  }
  return "unknown";
}

namespace {

namespace fs = std::filesystem;

// Keys a profile file and each of its [tiers.<tier>] tables may set. The file's root may also
// hold extends, description and tiers.
constexpr std::array<std::string_view, 32> kSettingKeys = {
    "threshold",
    "zeros",
    "negatives_to_review",
    "missing_to_review",
    "check_totals",
    "totals_tolerance",
    "nk_n",
    "nk_k",
    "p_ratio",
    "min_dof",
    "k_anonymity",
    "l_diversity",
    "min_units_oral_topical",
    "min_units_injection",
    "min_institutions",
    "min_insurers",
    "geographic_levels",
    "geographic_floor",
    "upper_protection_percent",
    "lower_protection_percent",
    "protection_min",
    "totals",
    "milp_time_limit_s",
    "marker",
    "rounding_base",
    "max_file_bytes",
    "max_cells",
    "table_extensions",
    "text_extensions",
    "review_extensions",
    // Not settings but allowed in both places, so a tier can say what it is for.
    "description",
    "extends",
};
// extends sits last so the tier check can leave it out: a tier cannot change the parent.
constexpr std::size_t kTierKeyCount = kSettingKeys.size() - 1;

// Where each setting was last set ("file:line:col: key"), for errors that involve the merged
// result of several files, such as a floor missing from the levels another file declared.
using Origins = std::map<std::string, std::string, std::less<>>;

bool valid_name(std::string_view name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

Status reject_unknown(const policy::Table& table, std::size_t known_count, bool allow_tiers) {
  for (const auto& key : table.keys()) {
    auto known = kSettingKeys.begin();
    auto end = kSettingKeys.begin() + static_cast<std::ptrdiff_t>(known_count);
    if (std::find(known, end, key) != end || (allow_tiers && key == "tiers")) continue;
    std::string list;
    for (auto it = known; it != end; ++it) {
      if (!list.empty()) list += ", ";
      list += *it;
    }
    if (allow_tiers) list += ", tiers";
    return fail(table.error_at(key, "unknown key (known: " + list + ")"));
  }
  return {};
}

template <class Field, class Value>
Status take(const policy::Table& table, std::string_view key, Origins& origins, Field& field,
            Expected<Value> read) {
  if (!read) return error_of(read);
  if (table.contains(key)) origins.insert_or_assign(std::string(key), table.where(key));
  field = static_cast<Field>(*read);
  return {};
}

Expected<std::string> one_of(const policy::Table& table, std::string_view key, std::string fallback,
                             std::initializer_list<std::string_view> allowed) {
  auto text = table.string_or(key, std::move(fallback));
  if (!text) return text;
  if (std::find(allowed.begin(), allowed.end(), *text) != allowed.end()) return text;
  std::string list;
  for (auto a : allowed) {
    if (!list.empty()) list += ", ";
    list += "\"" + std::string(a) + "\"";
  }
  return fail(table.error_at(key, "expected one of " + list + ", found \"" + *text + "\""));
}

Expected<std::vector<std::string>> extensions(const policy::Table& table, std::string_view key,
                                              std::vector<std::string> fallback) {
  auto list = table.strings_or(key, std::move(fallback));
  if (!list) return list;
  for (const auto& ext : *list) {
    bool plain = !ext.empty() && std::all_of(ext.begin(), ext.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    });
    if (!plain) {
      return fail(table.error_at(
          key, "\"" + ext + "\" is not a file extension (lower-case letters and digits, no dot)"));
    }
  }
  return list;
}

// Reads every setting present in table on top of profile; absent keys keep what the file it
// extends (or the built-in default) said.
Status apply_settings(const policy::Table& t, Profile& p, Origins& o) {
  ENCLAVE_TRY(take(t, "description", o, p.description, t.string_or("description", p.description)));

  ENCLAVE_TRY(take(t, "threshold", o, p.threshold, t.number_or("threshold", p.threshold, 1, 1e9)));
  auto zeros = one_of(t, "zeros", zeros_policy_name(p.zeros), {"disclosive", "allowed", "review"});
  if (!zeros) return error_of(zeros);
  if (t.contains("zeros")) o.insert_or_assign("zeros", t.where("zeros"));
  p.zeros = *zeros == "disclosive" ? ZerosPolicy::kDisclosive
            : *zeros == "allowed"  ? ZerosPolicy::kAllowed
                                   : ZerosPolicy::kReview;
  ENCLAVE_TRY(take(t, "negatives_to_review", o, p.negatives_to_review,
                   t.boolean_or("negatives_to_review", p.negatives_to_review)));
  ENCLAVE_TRY(take(t, "missing_to_review", o, p.missing_to_review,
                   t.boolean_or("missing_to_review", p.missing_to_review)));
  ENCLAVE_TRY(
      take(t, "check_totals", o, p.check_totals, t.boolean_or("check_totals", p.check_totals)));
  ENCLAVE_TRY(take(t, "totals_tolerance", o, p.totals_tolerance,
                   t.number_or("totals_tolerance", p.totals_tolerance, 0, 1e12)));

  ENCLAVE_TRY(take(t, "nk_n", o, p.nk_n, t.integer_or("nk_n", p.nk_n, 1, 2)));
  ENCLAVE_TRY(take(t, "nk_k", o, p.nk_k, t.number_or("nk_k", p.nk_k, 0, 1)));
  ENCLAVE_TRY(take(t, "p_ratio", o, p.p_ratio, t.number_or("p_ratio", p.p_ratio, 0, 1)));
  ENCLAVE_TRY(take(t, "min_dof", o, p.min_dof, t.integer_or("min_dof", p.min_dof, 0, 1'000'000)));
  ENCLAVE_TRY(take(t, "k_anonymity", o, p.k_anonymity,
                   t.integer_or("k_anonymity", p.k_anonymity, 1, 1'000'000)));
  ENCLAVE_TRY(take(t, "l_diversity", o, p.l_diversity,
                   t.integer_or("l_diversity", p.l_diversity, 1, 1'000'000)));

  // The NDB settings are optional: a profile without them does not apply the rule at all.
  if (t.contains("min_units_oral_topical")) {
    double units = 0;
    ENCLAVE_TRY(take(t, "min_units_oral_topical", o, units,
                     t.number_or("min_units_oral_topical", 0, 1, 1e12)));
    p.min_units_oral_topical = units;
  }
  if (t.contains("min_units_injection")) {
    double units = 0;
    ENCLAVE_TRY(
        take(t, "min_units_injection", o, units, t.number_or("min_units_injection", 0, 1, 1e12)));
    p.min_units_injection = units;
  }
  if (t.contains("min_institutions")) {
    int n = 0;
    ENCLAVE_TRY(
        take(t, "min_institutions", o, n, t.integer_or("min_institutions", 0, 1, 1'000'000)));
    p.min_institutions = n;
  }
  if (t.contains("min_insurers")) {
    int n = 0;
    ENCLAVE_TRY(take(t, "min_insurers", o, n, t.integer_or("min_insurers", 0, 1, 1'000'000)));
    p.min_insurers = n;
  }
  ENCLAVE_TRY(take(t, "geographic_levels", o, p.geographic_levels,
                   t.strings_or("geographic_levels", p.geographic_levels)));
  ENCLAVE_TRY(take(t, "geographic_floor", o, p.geographic_floor,
                   t.string_or("geographic_floor", p.geographic_floor)));

  ENCLAVE_TRY(take(t, "upper_protection_percent", o, p.upper_protection_percent,
                   t.number_or("upper_protection_percent", p.upper_protection_percent, 0, 1000)));
  ENCLAVE_TRY(take(t, "lower_protection_percent", o, p.lower_protection_percent,
                   t.number_or("lower_protection_percent", p.lower_protection_percent, 0, 100)));
  ENCLAVE_TRY(take(t, "protection_min", o, p.protection_min,
                   t.number_or("protection_min", p.protection_min, 0, 1e12)));
  auto totals = one_of(t, "totals", totals_policy_name(p.totals), {"recompute", "as_published"});
  if (!totals) return error_of(totals);
  if (t.contains("totals")) o.insert_or_assign("totals", t.where("totals"));
  p.totals = *totals == "recompute" ? TotalsPolicy::kRecompute : TotalsPolicy::kAsPublished;
  ENCLAVE_TRY(take(t, "milp_time_limit_s", o, p.milp_time_limit_s,
                   t.number_or("milp_time_limit_s", p.milp_time_limit_s, 0.1, 86400)));
  ENCLAVE_TRY(take(t, "marker", o, p.marker, t.string_or("marker", p.marker)));
  if (t.contains("rounding_base")) {
    std::int64_t base = 0;
    ENCLAVE_TRY(
        take(t, "rounding_base", o, base, t.integer_or("rounding_base", 0, 1, 1'000'000'000)));
    p.rounding_base = static_cast<double>(base);
  }

  ENCLAVE_TRY(take(t, "max_file_bytes", o, p.max_file_bytes,
                   t.integer_or("max_file_bytes", static_cast<std::int64_t>(p.max_file_bytes), 1,
                                std::int64_t{1} << 40)));
  ENCLAVE_TRY(
      take(t, "max_cells", o, p.max_cells,
           t.integer_or("max_cells", static_cast<std::int64_t>(p.max_cells), 1, 1'000'000'000)));
  ENCLAVE_TRY(take(t, "table_extensions", o, p.table_extensions,
                   extensions(t, "table_extensions", p.table_extensions)));
  ENCLAVE_TRY(take(t, "text_extensions", o, p.text_extensions,
                   extensions(t, "text_extensions", p.text_extensions)));
  ENCLAVE_TRY(take(t, "review_extensions", o, p.review_extensions,
                   extensions(t, "review_extensions", p.review_extensions)));
  return {};
}

Error error_at_origin(const Origins& origins, std::string_view key, const std::string& fallback,
                      std::string_view message) {
  auto it = origins.find(key);
  std::string where = it != origins.end() ? it->second : fallback + ": " + std::string(key);
  return Error{Errc::kInvalidArgument, where + ": " + std::string(message)};
}

// Checks that involve more than one key, on the merged profile: each key may come from a
// different file of the chain or from a tier.
Status validate(const Profile& p, const Origins& o, const std::string& source) {
  const auto& levels = p.geographic_levels;
  for (std::size_t i = 0; i < levels.size(); ++i) {
    if (levels[i].empty()) {
      return fail(error_at_origin(o, "geographic_levels", source, "empty level name"));
    }
    if (std::find(levels.begin(), levels.begin() + static_cast<std::ptrdiff_t>(i), levels[i]) !=
        levels.begin() + static_cast<std::ptrdiff_t>(i)) {
      return fail(error_at_origin(o, "geographic_levels", source,
                                  "level \"" + levels[i] + "\" is listed twice"));
    }
  }
  if (!p.geographic_floor.empty() &&
      std::find(levels.begin(), levels.end(), p.geographic_floor) == levels.end()) {
    return fail(error_at_origin(o, "geographic_floor", source,
                                "\"" + p.geographic_floor + "\" is not one of geographic_levels"));
  }
  if (p.marker.empty()) return fail(error_at_origin(o, "marker", source, "must not be empty"));
  // A marker that reads as a number would be taken for a published value by the next reader.
  double as_number = 0;
  const char* end = p.marker.data() + p.marker.size();
  auto [stop, ec] = std::from_chars(p.marker.data(), end, as_number);
  if (ec == std::errc() && stop == end) {
    return fail(error_at_origin(
        o, "marker", source, "\"" + p.marker + "\" reads as a number; choose a non-numeric mark"));
  }
  // One extension in two lists would make the file gate's decision depend on list order.
  const std::array<std::pair<const char*, const std::vector<std::string>*>, 3> lists = {{
      {"table_extensions", &p.table_extensions},
      {"text_extensions", &p.text_extensions},
      {"review_extensions", &p.review_extensions},
  }};
  for (std::size_t a = 0; a < lists.size(); ++a) {
    for (std::size_t b = a + 1; b < lists.size(); ++b) {
      for (const auto& ext : *lists[b].second) {
        if (std::find(lists[a].second->begin(), lists[a].second->end(), ext) !=
            lists[a].second->end()) {
          return fail(error_at_origin(
              o, lists[b].first, source,
              "\"" + ext + "\" is also in " + lists[a].first + "; an extension has one class"));
        }
      }
    }
  }
  return {};
}

struct ProfileFile {
  std::string name;
  fs::path path;
  std::unique_ptr<policy::Document> doc;
};

// The chain from the named profile up through `extends`, returned root ancestor first.
Expected<std::vector<ProfileFile>> load_chain(const fs::path& policies_dir,
                                              const std::string& name) {
  std::vector<ProfileFile> chain;
  std::string current = name;
  std::string named_at;  // where the `extends` naming `current` is, empty for the first file
  while (true) {
    std::string prefix = named_at.empty() ? std::string() : named_at + ": ";
    if (!valid_name(current)) {
      return fail(Errc::kInvalidArgument, prefix + "profile name \"" + current +
                                              "\" must be 1 to 64 of a-z, 0-9, '-', '_'");
    }
    auto seen = std::find_if(chain.begin(), chain.end(),
                             [&](const ProfileFile& f) { return f.name == current; });
    if (seen != chain.end()) {
      std::string cycle;
      for (auto it = seen; it != chain.end(); ++it) cycle += it->name + " -> ";
      return fail(Errc::kInvalidArgument, prefix + "cycle: " + cycle + current);
    }
    fs::path path = policies_dir / "exitcontrol" / (current + ".toml");
    auto doc = policy::Document::load_file(path);
    if (!doc) {
      if (named_at.empty()) return error_of(doc);
      return fail(doc.error().code,
                  prefix + "cannot load profile \"" + current + "\": " + doc.error().message);
    }
    auto owned = std::make_unique<policy::Document>(std::move(doc).value());
    auto extends = owned->root().string_or("extends", "");
    if (!extends) return error_of(extends);
    std::string where = owned->root().where("extends");
    chain.push_back(ProfileFile{current, path, std::move(owned)});
    if (extends->empty()) break;
    named_at = where;
    current = *extends;
  }
  std::reverse(chain.begin(), chain.end());
  return chain;
}

}  // namespace

Expected<Profile> load_profile(const std::filesystem::path& policies_dir, const std::string& name,
                               const std::optional<std::string>& tier) {
  auto chain = load_chain(policies_dir, name);
  if (!chain) return error_of(chain);

  Profile base;
  Origins origins;
  std::string source;
  // tier name -> its tables, ancestor first, so a child's tier overrides the parent's.
  std::map<std::string, std::vector<policy::Table>> tiers;
  for (const auto& file : *chain) {
    policy::Table root = file.doc->root();
    ENCLAVE_TRY(reject_unknown(root, kSettingKeys.size(), /*allow_tiers=*/true));
    ENCLAVE_TRY(apply_settings(root, base, origins));
    if (!source.empty()) source += " + ";
    source += file.path.string();

    auto tier_tables = root.table("tiers");
    if (!tier_tables) return error_of(tier_tables);
    if (!*tier_tables) continue;
    for (const auto& tier_name : (*tier_tables)->keys()) {
      if (!valid_name(tier_name)) {
        return fail(
            (*tier_tables)->error_at(tier_name, "tier names are 1 to 64 of a-z, 0-9, '-', '_'"));
      }
      auto table = (*tier_tables)->table(tier_name);
      if (!table) return error_of(table);
      ENCLAVE_TRY(reject_unknown(**table, kTierKeyCount, /*allow_tiers=*/false));
      tiers[tier_name].push_back(**table);
    }
  }
  base.name = name;
  base.source = source;
  ENCLAVE_TRY(validate(base, origins, source));
  for (const auto& [tier_name, tables] : tiers) base.tiers.push_back(tier_name);

  // Every tier is applied to a copy and validated, used or not.
  std::optional<Profile> chosen;
  for (const auto& [tier_name, tables] : tiers) {
    Profile tiered = base;
    Origins tier_origins = origins;
    for (const auto& table : tables) ENCLAVE_TRY(apply_settings(table, tiered, tier_origins));
    ENCLAVE_TRY(validate(tiered, tier_origins, source));
    if (tier && *tier == tier_name) {
      tiered.name = name + "/" + tier_name;
      tiered.tier = tier_name;
      tiered.source = source + " [tiers." + tier_name + "]";
      chosen = std::move(tiered);
    }
  }
  if (!tier) return base;
  if (chosen) return *chosen;
  std::string known;
  for (const auto& t : base.tiers) known += (known.empty() ? "" : ", ") + t;
  return fail(Errc::kInvalidArgument, chain->back().path.string() + ": profile \"" + name +
                                          "\" has no tier \"" + *tier +
                                          "\" (tiers: " + (known.empty() ? "none" : known) + ")");
}

}  // namespace enclave::exitcontrol
