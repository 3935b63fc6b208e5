#include "exitcontrol/core/profile.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "tests/support/process.hpp"

namespace enclave::exitcontrol {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::filesystem::path shipped_policies() {
  return std::filesystem::path(ENCLAVE_SOURCE_DIR) / "policies";
}

// A policies directory of the test's own, with profile files written from text.
class ScratchPolicies {
 public:
  ScratchPolicies() { std::filesystem::create_directories(dir_.path() / "exitcontrol"); }
  void write(const std::string& name, const std::string& text) {
    std::ofstream(dir_.path() / "exitcontrol" / (name + ".toml")) << text;
  }
  const std::filesystem::path& path() const { return dir_.path(); }
  std::string file(const std::string& name) const {
    return (dir_.path() / "exitcontrol" / (name + ".toml")).string();
  }
  // The error message of loading name, which must fail.
  std::string error(const std::string& name, std::optional<std::string> tier = std::nullopt) {
    auto p = load_profile(dir_.path(), name, tier);
    EXPECT_FALSE(p.has_value()) << name << " loaded";
    return p.has_value() ? std::string() : p.error().message;
  }

 private:
  testing::TempDir dir_;
};

TEST(ShippedProfiles, AcroDefaultHasAcrosDefaults) {
  auto p = load_profile(shipped_policies(), "acro-default");
  ASSERT_TRUE(p.has_value()) << p.error().describe();
  EXPECT_EQ(p->name, "acro-default");
  EXPECT_DOUBLE_EQ(p->threshold, 10);
  EXPECT_EQ(p->zeros, ZerosPolicy::kDisclosive);
  EXPECT_EQ(p->nk_n, 2);
  EXPECT_DOUBLE_EQ(p->nk_k, 0.9);
  EXPECT_DOUBLE_EQ(p->p_ratio, 0.1);
  EXPECT_EQ(p->min_dof, 10);
  EXPECT_TRUE(p->check_totals);
  EXPECT_FALSE(p->has_units_rule());
  EXPECT_FALSE(p->min_institutions.has_value());
  EXPECT_TRUE(p->geographic_floor.empty());
  EXPECT_EQ(p->marker, "-");
  EXPECT_THAT(p->tiers, ElementsAre("restricted"));
  EXPECT_THAT(p->source, HasSubstr("policies/exitcontrol/acro-default.toml"));
}

TEST(ShippedProfiles, NdbExtendsAcroDefaultWithTheNdbRules) {
  auto p = load_profile(shipped_policies(), "ndb");
  ASSERT_TRUE(p.has_value()) << p.error().describe();
  EXPECT_EQ(p->name, "ndb");
  EXPECT_DOUBLE_EQ(p->threshold, 10);
  EXPECT_EQ(p->zeros, ZerosPolicy::kAllowed);
  ASSERT_TRUE(p->min_units_oral_topical.has_value());
  EXPECT_DOUBLE_EQ(*p->min_units_oral_topical, 1000);
  ASSERT_TRUE(p->min_units_injection.has_value());
  EXPECT_DOUBLE_EQ(*p->min_units_injection, 400);
  EXPECT_EQ(p->min_institutions, 3);
  EXPECT_EQ(p->min_insurers, 3);
  EXPECT_THAT(p->geographic_levels, ElementsAre("nation", "region", "prefecture",
                                                "secondary_medical_area", "municipality"));
  EXPECT_EQ(p->geographic_floor, "prefecture");
  // Inherited from acro-default.
  EXPECT_DOUBLE_EQ(p->nk_k, 0.9);
  EXPECT_DOUBLE_EQ(p->p_ratio, 0.1);
  EXPECT_THAT(p->source, HasSubstr("acro-default.toml + "));
  EXPECT_THAT(p->source, HasSubstr("ndb.toml"));
  EXPECT_THAT(p->tiers, ElementsAre("restricted"));
}

TEST(ShippedProfiles, TierOfTheParentAppliesOnTopOfTheChild) {
  auto p = load_profile(shipped_policies(), "ndb", "restricted");
  ASSERT_TRUE(p.has_value()) << p.error().describe();
  EXPECT_EQ(p->name, "ndb/restricted");
  EXPECT_EQ(p->tier, "restricted");
  EXPECT_DOUBLE_EQ(p->threshold, 20);
  EXPECT_EQ(p->k_anonymity, 20);
  EXPECT_EQ(p->zeros, ZerosPolicy::kAllowed);  // ndb's, not overridden by the tier
  EXPECT_THAT(p->source, HasSubstr("[tiers.restricted]"));
}

TEST(ShippedProfiles, UnknownTierNamesTheFileAndTheKnownTiers) {
  auto p = load_profile(shipped_policies(), "ndb", "public");
  ASSERT_FALSE(p.has_value());
  EXPECT_EQ(p.error().code, Errc::kInvalidArgument);
  EXPECT_THAT(p.error().message, HasSubstr("ndb.toml"));
  EXPECT_THAT(p.error().message, HasSubstr("no tier \"public\" (tiers: restricted)"));
}

TEST(ShippedProfiles, UnknownProfileIsNotFound) {
  auto p = load_profile(shipped_policies(), "no-such-profile");
  ASSERT_FALSE(p.has_value());
  EXPECT_EQ(p.error().code, Errc::kNotFound);
}

TEST(ProfileFiles, AbsentKeysKeepTheBuiltInDefaults) {
  ScratchPolicies dir;
  dir.write("bare", "");
  auto p = load_profile(dir.path(), "bare");
  ASSERT_TRUE(p.has_value()) << p.error().describe();
  EXPECT_DOUBLE_EQ(p->threshold, Profile{}.threshold);
  EXPECT_EQ(p->zeros, Profile{}.zeros);
  EXPECT_TRUE(p->tiers.empty());
}

TEST(ProfileFiles, ChildOverridesParentAndChildTierOverridesParentTier) {
  ScratchPolicies dir;
  dir.write("base", R"(threshold = 5
nk_k = 0.8
[tiers.t]
threshold = 50
nk_k = 0.7
)");
  dir.write("child", R"(extends = "base"
threshold = 7
[tiers.t]
nk_k = 0.6
[tiers.u]
p_ratio = 0.2
)");
  auto plain = load_profile(dir.path(), "child");
  ASSERT_TRUE(plain.has_value()) << plain.error().describe();
  EXPECT_DOUBLE_EQ(plain->threshold, 7);
  EXPECT_DOUBLE_EQ(plain->nk_k, 0.8);
  EXPECT_THAT(plain->tiers, ElementsAre("t", "u"));

  auto t = load_profile(dir.path(), "child", "t");
  ASSERT_TRUE(t.has_value()) << t.error().describe();
  EXPECT_DOUBLE_EQ(t->threshold, 50);  // the parent's tier beats the child's base value
  EXPECT_DOUBLE_EQ(t->nk_k, 0.6);      // the child's tier beats the parent's tier

  auto u = load_profile(dir.path(), "child", "u");
  ASSERT_TRUE(u.has_value()) << u.error().describe();
  EXPECT_DOUBLE_EQ(u->p_ratio, 0.2);
  EXPECT_DOUBLE_EQ(u->threshold, 7);
}

TEST(ProfileFiles, UnknownKeyIsRefusedWithFileLineAndKey) {
  ScratchPolicies dir;
  dir.write("typo", "threshold = 10\nthreshhold = 5\n");
  std::string e = dir.error("typo");
  EXPECT_THAT(e, HasSubstr(dir.file("typo") + ":2:1: threshhold: unknown key"));
}

TEST(ProfileFiles, UnknownKeyInATierIsRefusedEvenWhenTheTierIsNotUsed) {
  ScratchPolicies dir;
  dir.write("p", "[tiers.x]\nthreshold = 20\nzero = \"allowed\"\n");
  EXPECT_THAT(dir.error("p"), HasSubstr(":3:1: tiers.x.zero: unknown key"));
}

TEST(ProfileFiles, ATierMayNotChangeWhatTheProfileExtends) {
  ScratchPolicies dir;
  dir.write("p", "[tiers.x]\nextends = \"other\"\n");
  EXPECT_THAT(dir.error("p"), HasSubstr("tiers.x.extends: unknown key"));
}

TEST(ProfileFiles, OutOfRangeAndWrongTypesAreRefusedNamingTheKey) {
  ScratchPolicies dir;
  const std::pair<std::string, std::string> cases[] = {
      {"threshold = 0", "threshold: expected a number between 1 and"},
      {"threshold = \"ten\"", "threshold: expected a number between 1 and 1e+09, found string"},
      {"nk_n = 3", "nk_n: expected an integer between 1 and 2, found 3"},
      {"nk_k = 1.5", "nk_k: expected a number between 0 and 1, found 1.5"},
      {"p_ratio = -0.1", "p_ratio: expected a number between 0 and 1"},
      {"min_dof = 2.5", "min_dof: expected an integer"},
      {"zeros = \"sometimes\"", "zeros: expected one of \"disclosive\", \"allowed\", \"review\""},
      {"totals = \"fudge\"", "totals: expected one of \"recompute\", \"as_published\""},
      {"check_totals = 1", "check_totals: expected a boolean, found integer"},
      {"min_units_injection = 0", "min_units_injection: expected a number between 1 and"},
      {"min_institutions = 0", "min_institutions: expected an integer between 1 and"},
      {"table_extensions = [\".csv\"]", "table_extensions: \".csv\" is not a file extension"},
      {"text_extensions = [\"csv\"]", "text_extensions: \"csv\" is also in table_extensions"},
      {"marker = \"0\"", "marker: \"0\" reads as a number"},
      {"marker = \"\"", "marker: must not be empty"},
      {"geographic_levels = [\"a\", \"b\"]\ngeographic_floor = \"c\"",
       "geographic_floor: \"c\" is not one of geographic_levels"},
      {"geographic_levels = [\"a\", \"a\"]", "geographic_levels: level \"a\" is listed twice"},
      {"geographic_floor = \"prefecture\"", "geographic_floor: \"prefecture\" is not one of"},
      {"tiers = 3", "tiers: expected a table, found integer"},
      {"[tiers.x]\nthreshold = -1", "tiers.x.threshold: expected a number between 1 and"},
      {"[tiers.\"Bad Tier\"]\nthreshold = 20", "tier names are 1 to 64 of"},
  };
  for (const auto& [text, message] : cases) {
    dir.write("bad", text + "\n");
    std::string e = dir.error("bad");
    EXPECT_THAT(e, HasSubstr(dir.file("bad") + ":")) << text;
    EXPECT_THAT(e, HasSubstr(message)) << text;
  }
}

TEST(ProfileFiles, CrossKeyErrorsNameTheFileThatSetTheKey) {
  ScratchPolicies dir;
  dir.write("base", "geographic_levels = [\"nation\", \"prefecture\"]\n");
  dir.write("child", "extends = \"base\"\n\ngeographic_floor = \"municipality\"\n");
  EXPECT_THAT(dir.error("child"),
              HasSubstr(dir.file("child") + ":3:1: geographic_floor: \"municipality\" is not one"));
}

TEST(ProfileFiles, ATierThatBreaksACrossKeyRuleIsRefused) {
  ScratchPolicies dir;
  dir.write("p",
            "geographic_levels = [\"a\", \"b\"]\ngeographic_floor = \"a\"\n"
            "[tiers.t]\ngeographic_floor = \"z\"\n");
  EXPECT_THAT(dir.error("p"), HasSubstr(":4:1: tiers.t.geographic_floor: \"z\" is not one"));
}

TEST(ProfileFiles, ExtendsCycleIsAnErrorNamingTheChain) {
  ScratchPolicies dir;
  dir.write("a", "extends = \"b\"\n");
  dir.write("b", "threshold = 5\nextends = \"a\"\n");
  std::string e = dir.error("a");
  EXPECT_THAT(e, HasSubstr(dir.file("b") + ":2:1: extends: cycle: a -> b -> a"));

  dir.write("self", "extends = \"self\"\n");
  EXPECT_THAT(dir.error("self"), HasSubstr("cycle: self -> self"));
}

TEST(ProfileFiles, MissingParentNamesTheExtendsKey) {
  ScratchPolicies dir;
  dir.write("orphan", "extends = \"nowhere\"\n");
  auto p = load_profile(dir.path(), "orphan");
  ASSERT_FALSE(p.has_value());
  EXPECT_EQ(p.error().code, Errc::kNotFound);
  EXPECT_THAT(p.error().message, HasSubstr(dir.file("orphan") + ":1:1: extends: cannot load "
                                                                "profile \"nowhere\""));
}

TEST(ProfileFiles, NamesThatCouldLeaveTheDirectoryAreRefused) {
  ScratchPolicies dir;
  dir.write("p", "extends = \"../p\"\n");
  EXPECT_THAT(dir.error("p"), HasSubstr("extends: profile name \"../p\" must be"));
  EXPECT_THAT(dir.error("../etc/passwd"), HasSubstr("profile name \"../etc/passwd\" must be"));
  EXPECT_THAT(dir.error("Upper"), HasSubstr("must be 1 to 64 of a-z"));
}

TEST(ProfileFiles, SyntaxErrorNamesFileLineAndColumn) {
  ScratchPolicies dir;
  dir.write("broken", "threshold = 10\nnk_k = = 2\n");
  EXPECT_THAT(dir.error("broken"), HasSubstr(dir.file("broken") + ":2:"));
}

TEST(ProfileFiles, EveryOptionalKeyIsRead) {
  ScratchPolicies dir;
  dir.write("full", R"(description = "all keys"
threshold = 11
zeros = "review"
negatives_to_review = false
missing_to_review = false
check_totals = false
totals_tolerance = 0.5
nk_n = 1
nk_k = 0.85
p_ratio = 0.05
min_dof = 12
k_anonymity = 5
l_diversity = 3
min_units_oral_topical = 900
min_units_injection = 300
min_institutions = 4
min_insurers = 2
geographic_levels = ["country", "state"]
geographic_floor = "state"
upper_protection_percent = 15
lower_protection_percent = 12
protection_min = 2
totals = "recompute"
milp_time_limit_s = 5
marker = "x"
rounding_base = 5
max_file_bytes = 1000
max_cells = 100
table_extensions = ["csv", "tsv"]
text_extensions = ["txt"]
review_extensions = ["png"]
)");
  auto p = load_profile(dir.path(), "full");
  ASSERT_TRUE(p.has_value()) << p.error().describe();
  EXPECT_EQ(p->description, "all keys");
  EXPECT_DOUBLE_EQ(p->threshold, 11);
  EXPECT_EQ(p->zeros, ZerosPolicy::kReview);
  EXPECT_FALSE(p->negatives_to_review);
  EXPECT_FALSE(p->missing_to_review);
  EXPECT_FALSE(p->check_totals);
  EXPECT_DOUBLE_EQ(p->totals_tolerance, 0.5);
  EXPECT_EQ(p->nk_n, 1);
  EXPECT_DOUBLE_EQ(p->nk_k, 0.85);
  EXPECT_DOUBLE_EQ(p->p_ratio, 0.05);
  EXPECT_EQ(p->min_dof, 12);
  EXPECT_EQ(p->k_anonymity, 5);
  EXPECT_EQ(p->l_diversity, 3);
  EXPECT_EQ(p->min_units_oral_topical, 900);
  EXPECT_EQ(p->min_units_injection, 300);
  EXPECT_EQ(p->min_institutions, 4);
  EXPECT_EQ(p->min_insurers, 2);
  EXPECT_EQ(p->geographic_floor, "state");
  EXPECT_DOUBLE_EQ(p->upper_protection_percent, 15);
  EXPECT_DOUBLE_EQ(p->lower_protection_percent, 12);
  EXPECT_DOUBLE_EQ(p->protection_min, 2);
  EXPECT_EQ(p->totals, TotalsPolicy::kRecompute);
  EXPECT_DOUBLE_EQ(p->milp_time_limit_s, 5);
  EXPECT_EQ(p->marker, "x");
  EXPECT_EQ(p->rounding_base, 5);
  EXPECT_EQ(p->max_file_bytes, 1000u);
  EXPECT_EQ(p->max_cells, 100u);
  EXPECT_THAT(p->table_extensions, ElementsAre("csv", "tsv"));
  EXPECT_THAT(p->text_extensions, ElementsAre("txt"));
  EXPECT_THAT(p->review_extensions, ElementsAre("png"));
}

}  // namespace
}  // namespace enclave::exitcontrol
