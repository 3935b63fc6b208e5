#include "common/policy.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>
#include <fstream>

namespace enclave::policy {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

Document parse_ok(std::string_view text, std::string name = "test.toml") {
  auto doc = Document::parse(text, std::move(name));
  EXPECT_TRUE(doc.has_value()) << doc.error().describe();
  return std::move(doc).value();
}

Table sub(const Table& parent, std::string_view key) {
  auto t = parent.table(key);
  EXPECT_TRUE(t.has_value()) << t.error().describe();
  EXPECT_TRUE(t->has_value()) << key << " absent";
  return **t;
}

TEST(PolicyGetters, ReadPresentValuesOfEveryType) {
  Document doc = parse_ok(R"(
name = "auditd"
count = 42
ratio = 0.25
whole = 3
enabled = true
sinks = ["a", "b"]
[sub]
x = 1
)");
  Table root = doc.root();
  EXPECT_EQ(root.path(), "");
  EXPECT_EQ(root.string("name").value(), "auditd");
  EXPECT_EQ(root.string_or("name", "fallback").value(), "auditd");
  EXPECT_EQ(root.integer_or("count", 0, 1, 100).value(), 42);
  EXPECT_DOUBLE_EQ(root.number_or("ratio", 9, 0, 1).value(), 0.25);
  EXPECT_DOUBLE_EQ(root.number_or("whole", 9, 0, 10).value(), 3.0);  // integers are numbers
  EXPECT_TRUE(root.boolean_or("enabled", false).value());
  EXPECT_THAT(root.strings_or("sinks", {"z"}).value(), ElementsAre("a", "b"));
  auto t = root.table("sub");
  ASSERT_TRUE(t.has_value());
  ASSERT_TRUE(t->has_value());
  EXPECT_EQ((*t)->path(), "sub");
  EXPECT_EQ((*t)->integer_or("x", 0, 0, 9).value(), 1);
  EXPECT_TRUE(root.contains("ratio"));
  EXPECT_FALSE(root.contains("missing"));
}

TEST(PolicyGetters, AbsentKeysGiveFallbacks) {
  Document doc = parse_ok("[t]\n");
  Table t = sub(doc.root(), "t");
  EXPECT_EQ(t.string_or("a", "fb").value(), "fb");
  EXPECT_EQ(t.integer_or("a", 7, 1, 10).value(), 7);
  EXPECT_DOUBLE_EQ(t.number_or("a", 0.5, 0, 1).value(), 0.5);
  EXPECT_FALSE(t.boolean_or("a", false).value());
  EXPECT_TRUE(t.boolean_or("a", true).value());
  EXPECT_THAT(t.strings_or("a", {"x", "y"}).value(), ElementsAre("x", "y"));
  auto absent_table = t.table("a");
  ASSERT_TRUE(absent_table.has_value());
  EXPECT_FALSE(absent_table->has_value());
  auto absent_tables = t.tables("a");
  ASSERT_TRUE(absent_tables.has_value());
  EXPECT_TRUE(absent_tables->empty());
}

TEST(PolicyGetters, IntegerBoundsAreInclusive) {
  Document doc = parse_ok("lo = 1\nhi = 1000000\nbelow = 0\nabove = 1000001\n");
  Table root = doc.root();
  EXPECT_EQ(root.integer_or("lo", 5, 1, 1000000).value(), 1);
  EXPECT_EQ(root.integer_or("hi", 5, 1, 1000000).value(), 1000000);
  auto below = root.integer_or("below", 5, 1, 1000000);
  ASSERT_FALSE(below.has_value());
  EXPECT_EQ(below.error().message,
            "test.toml:3:1: below: expected an integer between 1 and 1000000, found 0");
  auto above = root.integer_or("above", 5, 1, 1000000);
  ASSERT_FALSE(above.has_value());
  EXPECT_EQ(above.error().message,
            "test.toml:4:1: above: expected an integer between 1 and 1000000, found 1000001");
}

// The message the header promises, at the line and column of the key.
TEST(PolicyErrors, WrongTypeNamesFileLineColumnAndDottedKey) {
  Document doc = parse_ok(R"(# Audit service policy.
[audit]
origin = "enclave.local/audit"

[audit.commit]
max_batch = 10

# How often to sign.
[audit.checkpoint]
every_seconds = 5
# Typo: a string where an integer belongs.
    every_entries = "often"
)",
                          "policies/audit.toml");
  Table cp = sub(sub(doc.root(), "audit"), "checkpoint");
  EXPECT_EQ(cp.path(), "audit.checkpoint");
  auto v = cp.integer_or("every_entries", 1000, 1, 1000000);
  ASSERT_FALSE(v.has_value());
  EXPECT_EQ(v.error().code, Errc::kInvalidArgument);
  EXPECT_EQ(v.error().message,
            "policies/audit.toml:12:5: audit.checkpoint.every_entries: expected an integer "
            "between 1 and 1000000, found string");
}

TEST(PolicyErrors, IntegerRejectsFloat) {
  Document doc = parse_ok("[t]\nn = 2.0\n");
  auto v = sub(doc.root(), "t").integer_or("n", 1, 0, 10);
  ASSERT_FALSE(v.has_value());
  EXPECT_EQ(v.error().message,
            "test.toml:2:1: t.n: expected an integer between 0 and 10, found float");
}

TEST(PolicyErrors, NumberRejectsNonNumbersOutOfRangeAndNan) {
  Document doc = parse_ok("s = \"5\"\nb = true\nbig = 86401\nsmall = 0.01\nn = nan\n");
  Table root = doc.root();
  auto s = root.number_or("s", 5, 0.05, 86400);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().message,
            "test.toml:1:1: s: expected a number between 0.05 and 86400, found string");
  auto b = root.number_or("b", 5, 0.05, 86400);
  ASSERT_FALSE(b.has_value());
  EXPECT_THAT(b.error().message, HasSubstr("found boolean"));
  auto big = root.number_or("big", 5, 0.05, 86400);
  ASSERT_FALSE(big.has_value());
  EXPECT_EQ(big.error().message,
            "test.toml:3:1: big: expected a number between 0.05 and 86400, found 86401");
  auto small = root.number_or("small", 5, 0.05, 86400);
  ASSERT_FALSE(small.has_value());
  EXPECT_THAT(small.error().message, HasSubstr("found 0.01"));
  auto n = root.number_or("n", 5, 0.05, 86400);
  ASSERT_FALSE(n.has_value());
  EXPECT_THAT(n.error().message, StartsWith("test.toml:5:1: n: expected a number"));
}

TEST(PolicyErrors, StringAndBooleanTypeMismatch) {
  Document doc = parse_ok("[a.b]\ns = 1\nflag = \"yes\"\n");
  Table b = sub(sub(doc.root(), "a"), "b");
  auto s = b.string("s");
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().message, "test.toml:2:1: a.b.s: expected a string, found integer");
  auto s_or = b.string_or("s", "x");
  ASSERT_FALSE(s_or.has_value());
  EXPECT_EQ(s_or.error().message, s.error().message);
  auto flag = b.boolean_or("flag", false);
  ASSERT_FALSE(flag.has_value());
  EXPECT_EQ(flag.error().message, "test.toml:3:1: a.b.flag: expected a boolean, found string");
}

TEST(PolicyErrors, MissingRequiredKeyNamesTheTable) {
  Document doc = parse_ok("top = 1\n\n[audit]\nsocket = \"x\"\n");
  auto v = sub(doc.root(), "audit").string("origin");
  ASSERT_FALSE(v.has_value());
  EXPECT_EQ(v.error().message, "test.toml:3:1: audit.origin: missing required string");
  auto root_missing = doc.root().string("name");
  ASSERT_FALSE(root_missing.has_value());
  EXPECT_EQ(root_missing.error().message, "test.toml:1:1: name: missing required string");
}

TEST(PolicyErrors, StringsNamesTheBadElement) {
  Document doc = parse_ok("[audit]\nsinks = [\n  \"a\",\n  \"b\",\n  3,\n]\nsolo = \"x\"\n");
  Table audit = sub(doc.root(), "audit");
  auto v = audit.strings_or("sinks", {});
  ASSERT_FALSE(v.has_value());
  EXPECT_EQ(v.error().message, "test.toml:5:3: audit.sinks[2]: expected a string, found integer");
  auto solo = audit.strings_or("solo", {});
  ASSERT_FALSE(solo.has_value());
  EXPECT_EQ(solo.error().message,
            "test.toml:7:1: audit.solo: expected an array of strings, found string");
}

TEST(PolicyErrors, TableOfWrongType) {
  Document doc = parse_ok("checkpoint = 5\nlist = [1]\n");
  auto t = doc.root().table("checkpoint");
  ASSERT_FALSE(t.has_value());
  EXPECT_EQ(t.error().message, "test.toml:1:1: checkpoint: expected a table, found integer");
  auto arr = doc.root().table("list");
  ASSERT_FALSE(arr.has_value());
  EXPECT_THAT(arr.error().message, HasSubstr("expected a table, found array"));
}

TEST(PolicyTables, ArrayOfTablesHasIndexedPathsAndLocations) {
  Document doc = parse_ok(R"([audit]
[[audit.sinks]]
name = "file"
[[audit.sinks]]
name = "syslog"
port = "514"
)");
  Table audit = sub(doc.root(), "audit");
  auto sinks = audit.tables("sinks");
  ASSERT_TRUE(sinks.has_value()) << sinks.error().describe();
  ASSERT_EQ(sinks->size(), 2u);
  EXPECT_EQ((*sinks)[0].path(), "audit.sinks[0]");
  EXPECT_EQ((*sinks)[1].path(), "audit.sinks[1]");
  EXPECT_EQ((*sinks)[0].string("name").value(), "file");
  EXPECT_EQ((*sinks)[1].string("name").value(), "syslog");
  auto port = (*sinks)[1].integer_or("port", 514, 1, 65535);
  ASSERT_FALSE(port.has_value());
  EXPECT_EQ(port.error().message,
            "test.toml:6:1: audit.sinks[1].port: expected an integer between 1 and 65535, found "
            "string");
  auto missing = (*sinks)[1].string("path");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().message, "test.toml:4:1: audit.sinks[1].path: missing required string");
}

TEST(PolicyTables, InlineArrayOfTablesIsAccepted) {
  Document doc = parse_ok("rules = [{ name = \"a\" }, { name = \"b\" }]\n");
  auto rules = doc.root().tables("rules");
  ASSERT_TRUE(rules.has_value());
  ASSERT_EQ(rules->size(), 2u);
  EXPECT_EQ((*rules)[1].string("name").value(), "b");
}

TEST(PolicyTables, ArrayOfNonTablesIsRefused) {
  Document doc = parse_ok("rules = [\n  { name = \"a\" },\n  7,\n]\nscalar = 1\n");
  auto rules = doc.root().tables("rules");
  ASSERT_FALSE(rules.has_value());
  EXPECT_EQ(rules.error().message, "test.toml:3:3: rules[1]: expected a table, found integer");
  auto scalar = doc.root().tables("scalar");
  ASSERT_FALSE(scalar.has_value());
  EXPECT_EQ(scalar.error().message,
            "test.toml:5:1: scalar: expected an array of tables, found integer");
}

TEST(PolicyTables, NestedTablesCarryTheirDottedPath) {
  Document doc = parse_ok("[a.b.c]\nd = \"x\"\n[a]\ne = 1\n");
  Table a = sub(doc.root(), "a");
  Table c = sub(sub(a, "b"), "c");
  EXPECT_EQ(c.path(), "a.b.c");
  EXPECT_EQ(c.where("d"), "test.toml:2:1: a.b.c.d");
  EXPECT_EQ(c.where("zz"), "test.toml:1:1: a.b.c.zz");
  Error e = c.error_at("d", "must not be empty");
  EXPECT_EQ(e.code, Errc::kInvalidArgument);
  EXPECT_EQ(e.message, "test.toml:2:1: a.b.c.d: must not be empty");
}

TEST(PolicyTables, QuotedKeysStayUnambiguousInPaths) {
  Document doc = parse_ok("[\"site.one\"]\n\"two words\" = 1\n");
  Table site = sub(doc.root(), "site.one");
  EXPECT_EQ(site.path(), "\"site.one\"");
  EXPECT_EQ(site.where("two words"), "test.toml:2:1: \"site.one\".\"two words\"");
}

TEST(PolicyUnknownKeys, FirstUnknownKeyInFileOrderIsNamed) {
  Document doc = parse_ok("[audit]\na = 1\nzeta = 2\nbogus = 3\nc = 4\n", "policies/audit.toml");
  Table audit = sub(doc.root(), "audit");
  EXPECT_THAT(audit.keys(), ElementsAre("a", "zeta", "bogus", "c"));
  auto s = audit.reject_unknown({"a", "b", "c"});
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code, Errc::kInvalidArgument);
  EXPECT_EQ(s.error().message, "policies/audit.toml:3:1: audit.zeta: unknown key (known: a, b, c)");
  EXPECT_TRUE(audit.reject_unknown({"a", "b", "c", "zeta", "bogus"}).has_value());
}

TEST(PolicyUnknownKeys, SubTablesCountAsKeys) {
  Document doc = parse_ok("[audit]\norigin = \"x\"\n[audit.chekpoint]\nevery_entries = 1\n");
  auto s = sub(doc.root(), "audit").reject_unknown({"origin", "checkpoint"});
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().message,
            "test.toml:3:8: audit.chekpoint: unknown key (known: origin, checkpoint)");
}

TEST(PolicySyntax, ErrorsNameFileLineAndColumn) {
  auto doc = Document::parse("a = 1\nb = = 2\n", "policies/x.toml");
  ASSERT_FALSE(doc.has_value());
  EXPECT_EQ(doc.error().code, Errc::kInvalidArgument);
  EXPECT_THAT(doc.error().message, StartsWith("policies/x.toml:2:5: "));
  EXPECT_GT(doc.error().message.size(), std::string_view("policies/x.toml:2:5: ").size());

  auto dup = Document::parse("a = 1\n\na = 2\n", "dup.toml");
  ASSERT_FALSE(dup.has_value());
  EXPECT_THAT(dup.error().message, StartsWith("dup.toml:3:"));
  EXPECT_THAT(dup.error().message, HasSubstr("'a'"));
}

class PolicyFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/policy_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path write(const std::string& name, std::string_view text) {
    auto p = dir_ / name;
    std::ofstream(p) << text;
    return p;
  }
  std::filesystem::path dir_;
};

TEST_F(PolicyFileTest, LoadsAFileAndNamesItInErrors) {
  auto path = write("audit.toml", "[audit]\nmax = \"x\"\n");
  auto doc = Document::load_file(path);
  ASSERT_TRUE(doc.has_value()) << doc.error().describe();
  EXPECT_EQ(doc->source(), path.string());
  auto audit = doc->root().table("audit");
  ASSERT_TRUE(audit.has_value() && audit->has_value());
  auto max = (*audit)->integer_or("max", 1, 1, 2);
  ASSERT_FALSE(max.has_value());
  EXPECT_EQ(max.error().message,
            path.string() + ":2:1: audit.max: expected an integer between 1 and 2, found string");
}

TEST_F(PolicyFileTest, SyntaxErrorInFileNamesThePath) {
  auto path = write("bad.toml", "[audit\n");
  auto doc = Document::load_file(path);
  ASSERT_FALSE(doc.has_value());
  EXPECT_EQ(doc.error().code, Errc::kInvalidArgument);
  EXPECT_THAT(doc.error().message, StartsWith(path.string() + ":1:"));
}

TEST_F(PolicyFileTest, MissingFileIsNotFound) {
  auto path = dir_ / "x.toml";
  auto doc = Document::load_file(path);
  ASSERT_FALSE(doc.has_value());
  EXPECT_EQ(doc.error().code, Errc::kNotFound);
  EXPECT_EQ(doc.error().message, path.string() + ": no such file");
}

TEST_F(PolicyFileTest, DirectoryIsAnIoError) {
  auto doc = Document::load_file(dir_);
  ASSERT_FALSE(doc.has_value());
  EXPECT_EQ(doc.error().code, Errc::kIo);
  EXPECT_THAT(doc.error().message, StartsWith(dir_.string() + ": "));
}

TEST_F(PolicyFileTest, DocumentSurvivesAMove) {
  auto loaded = Document::load_file(write("m.toml", "[t]\nv = 3\n"));
  ASSERT_TRUE(loaded.has_value());
  Document moved = std::move(loaded).value();
  Document target = parse_ok("");
  target = std::move(moved);
  auto t = target.root().table("t");
  ASSERT_TRUE(t.has_value() && t->has_value());
  EXPECT_EQ((*t)->integer_or("v", 0, 0, 9).value(), 3);
  EXPECT_THAT((*t)->where("v"), StartsWith(target.source() + ":2:1"));
}

}  // namespace
}  // namespace enclave::policy
