// An export profile: every knob of the disclosure checks, read from
// policies/exitcontrol/<name>.toml. A profile may extend another (`extends = "acro-default"`)
// and carries tier overrides ([tiers.<tier>]) applied on top when a tier is named.
// Unknown keys and out-of-range values are refused with file, line and key.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace enclave::exitcontrol {

enum class ZerosPolicy { kDisclosive, kAllowed, kReview };
enum class TotalsPolicy { kRecompute, kAsPublished };  // after secondary suppression

const char* zeros_policy_name(ZerosPolicy policy);    // "disclosive", "allowed", "review"
const char* totals_policy_name(TotalsPolicy policy);  // "recompute", "as_published"

struct Profile {
  std::string name;    // "acro-default", "ndb"; with a tier: "ndb/restricted"
  std::string source;  // file(s) it was read from, for the report
  std::string description;
  std::string tier;                // the tier applied, empty for none
  std::vector<std::string> tiers;  // every tier the profile (and what it extends) defines

  // Primary checks.
  double threshold = 10;  // minimum contributors (or count) per cell
  ZerosPolicy zeros = ZerosPolicy::kDisclosive;
  bool negatives_to_review = true;
  bool missing_to_review = true;
  bool check_totals = true;     // margins must equal the sum of their parts
  double totals_tolerance = 0;  // absolute

  // Dominance (magnitude tables). A table carries only the largest two contributions per
  // cell, so nk_n is 1 or 2.
  int nk_n = 2;
  double nk_k = 0.9;
  double p_ratio = 0.1;

  // Models and tests.
  int min_dof = 10;

  // Row-level extracts.
  int k_anonymity = 10;
  int l_diversity = 2;

  // NDB publication rules; absent in profiles that do not use them.
  std::optional<double> min_units_oral_topical;  // 1000 where patient counts are unknown
  std::optional<double> min_units_injection;     // 400
  std::optional<int> min_institutions;           // fewer than this: review
  std::optional<int> min_insurers;               // fewer than this: review
  std::vector<std::string> geographic_levels;    // coarsest first
  std::string geographic_floor;                  // finest level that may be published
  bool has_units_rule() const {
    return min_units_oral_topical.has_value() || min_units_injection.has_value();
  }

  // Secondary suppression and the attacker audit. A suppressed cell with value a is protected
  // when the attacker's interval [lo, hi] reaches hi >= a + U and lo <= a - L, where
  // U = max(upper_protection_percent% of a, protection_min) and
  // L = min(a, max(lower_protection_percent% of a, protection_min)) for non-negative tables.
  double upper_protection_percent = 10;
  double lower_protection_percent = 10;
  double protection_min = 1;
  TotalsPolicy totals = TotalsPolicy::kAsPublished;
  double milp_time_limit_s = 30;
  std::string marker = "-";             // how a suppressed cell is written in the safe version
  std::optional<double> rounding_base;  // when set, suggest also offers controlled rounding

  // File gate.
  std::uint64_t max_file_bytes = 100ull << 20;
  std::uint64_t max_cells = 5'000'000;
  std::vector<std::string> table_extensions = {"csv"};
  std::vector<std::string> text_extensions = {"txt", "md", "log"};
  std::vector<std::string> review_extensions = {"png", "jpg", "jpeg", "pdf", "svg"};
};

// Loads policies_dir/exitcontrol/<name>.toml (following `extends`) and, when tier is given,
// applies [tiers.<tier>] on top. An unknown tier is an error naming the file. Every tier of
// every file in the chain is validated even when not applied, so a typo in a tier no one uses
// today is still refused. Names are [a-z0-9_-]+ (no paths).
Expected<Profile> load_profile(const std::filesystem::path& policies_dir, const std::string& name,
                               const std::optional<std::string>& tier = std::nullopt);

}  // namespace enclave::exitcontrol
