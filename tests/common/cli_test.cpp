#include "common/cli.hpp"

#include <gtest/gtest.h>

#include <sstream>

namespace enclave::cli {
namespace {

TEST(TextTable, AlignsTextLeftAndNumberColumnsRight) {
  TextTable t({"SITE", "LOGINS", "NOTE"});
  t.add({"tohoku-room-1", "1,204", "ok"});
  t.add({"osaka", "7", "12 failed"});
  t.add({"nagoya", "-", ""});
  std::ostringstream out;
  t.print(out);
  EXPECT_EQ(out.str(),
            "SITE           LOGINS  NOTE\n"
            "tohoku-room-1   1,204  ok\n"
            "osaka               7  12 failed\n"
            "nagoya              -  \n");
}

TEST(TextTable, DatesAndIdentifiersAreNotNumbers) {
  TextTable t({"DAY", "ID", "SHARE"});
  t.add({"2026-11-23", "tc-017", "40%"});
  t.add({"2026-11-24", "7", "-2.5"});
  std::ostringstream out;
  t.print(out);
  EXPECT_EQ(out.str(),
            "DAY         ID      SHARE\n"
            "2026-11-23  tc-017    40%\n"
            "2026-11-24  7        -2.5\n");
}

TEST(TextTable, WideCharactersTakeTwoColumns) {
  EXPECT_EQ(display_width("abc"), 3u);
  EXPECT_EQ(display_width("東北"), 4u);
  EXPECT_EQ(display_width("ｱ"), 1u);  // halfwidth katakana (U+FF71) is narrow
  EXPECT_EQ(display_width("é"), 1u);
  EXPECT_EQ(display_width("\xff"
                          "a"),
            2u);  // a stray byte counts as one
  TextTable t({"NAME", "N"});
  t.add({"東北", "1"});
  t.add({"osaka", "22"});
  std::ostringstream out;
  t.print(out);
  EXPECT_EQ(out.str(), "NAME    N\n東北    1\nosaka  22\n");
}

TEST(Numbers, WithCommas) {
  EXPECT_EQ(with_commas(0), "0");
  EXPECT_EQ(with_commas(999), "999");
  EXPECT_EQ(with_commas(1000), "1,000");
  EXPECT_EQ(with_commas(1234567), "1,234,567");
}

}  // namespace
}  // namespace enclave::cli
