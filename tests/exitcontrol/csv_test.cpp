#include "exitcontrol/core/csv.hpp"

#include <gtest/gtest.h>

#include <string>

namespace enclave::exitcontrol::csv {
namespace {

Document parse_ok(std::string_view bytes) {
  auto doc = parse(bytes);
  EXPECT_TRUE(doc) << (doc ? "" : doc.error().describe("t.csv"));
  return doc ? std::move(doc).value() : Document{};
}

ParseError parse_error(std::string_view bytes, const ParseLimits& limits = {}) {
  auto doc = parse(bytes, limits);
  EXPECT_FALSE(doc) << "parsed";
  return doc ? ParseError{} : doc.error();
}

TEST(CsvParse, PlainRecordsWithLf) {
  auto doc = parse_ok("region,age,count\nMiyagi,0-4,12\nIwate,0-4,7\n");
  ASSERT_EQ(doc.records(), 3u);
  EXPECT_EQ(doc.width(), 3u);
  EXPECT_EQ(doc.field(0, 2), "count");
  EXPECT_EQ(doc.field(2, 0), "Iwate");
  EXPECT_EQ(doc.field(2, 2), "7");
  EXPECT_EQ(doc.column("age"), 1u);
  EXPECT_EQ(doc.column("sex"), std::nullopt);
  ASSERT_EQ(doc.header().size(), 3u);
  EXPECT_EQ(doc.header()[0], "region");
}

TEST(CsvParse, CrLfAndAFinalLineWithoutNewline) {
  auto doc = parse_ok("a,b\r\n1,2\r\n3,4");
  ASSERT_EQ(doc.records(), 3u);
  EXPECT_EQ(doc.field(1, 1), "2");
  EXPECT_EQ(doc.field(2, 1), "4");
  EXPECT_EQ(doc.raw_record(1), "1,2\r\n");
  EXPECT_EQ(doc.raw_record(2), "3,4");
}

TEST(CsvParse, TrailingEmptyLinesAreIgnored) {
  auto doc = parse_ok("a,b\n1,2\n\n\r\n");
  EXPECT_EQ(doc.records(), 2u);
  EXPECT_EQ(doc.raw_record(1), "1,2");  // the line end belongs to the trailing part
}

TEST(CsvParse, AnEmptyLineInsideIsARaggedRecord) {
  auto e = parse_error("a,b\n\n1,2\n");
  EXPECT_EQ(e.code, ParseErrc::kRagged);
  EXPECT_EQ(e.row, 2u);
}

TEST(CsvParse, ByteOrderMarkIsSkipped) {
  auto doc = parse_ok("\xEF\xBB\xBFregion,count\nMiyagi,3\n");
  EXPECT_EQ(doc.header()[0], "region");
  EXPECT_EQ(doc.column("region"), 0u);
  EXPECT_EQ(doc.raw_record(0), "region,count\n");
}

TEST(CsvParse, QuotedFieldsWithCommasQuotesAndNewlines) {
  auto doc = parse_ok("name,note\n\"Sendai, Miyagi\",\"said \"\"hi\"\"\"\n\"two\nlines\",\"\"\n");
  ASSERT_EQ(doc.records(), 3u);
  EXPECT_EQ(doc.field(1, 0), "Sendai, Miyagi");
  EXPECT_EQ(doc.field(1, 1), "said \"hi\"");
  EXPECT_EQ(doc.field(2, 0), "two\nlines");
  EXPECT_EQ(doc.field(2, 1), "");
}

TEST(CsvParse, EmptyFieldsAtEitherEnd) {
  auto doc = parse_ok("a,b,c\n,,\n1,,\n");
  ASSERT_EQ(doc.records(), 3u);
  EXPECT_EQ(doc.field(1, 0), "");
  EXPECT_EQ(doc.field(2, 0), "1");
  EXPECT_EQ(doc.field(2, 2), "");
}

TEST(CsvParse, JapaneseCategoryNames) {
  auto doc = parse_ok("都道府県,年齢,患者数\n宮城県,0-4歳,12\n\"岩手県\",65歳以上,7\n");
  ASSERT_EQ(doc.records(), 3u);
  EXPECT_EQ(doc.field(1, 0), "宮城県");
  EXPECT_EQ(doc.field(2, 0), "岩手県");
  EXPECT_EQ(doc.field(2, 1), "65歳以上");
  EXPECT_EQ(doc.column("患者数"), 2u);
}

TEST(CsvParse, RaggedRecordNamesRowAndCounts) {
  auto e = parse_error("a,b,c\n1,2,3\n4,5\n");
  EXPECT_EQ(e.code, ParseErrc::kRagged);
  EXPECT_EQ(e.row, 3u);
  EXPECT_EQ(e.column, 0u);
  EXPECT_EQ(e.describe("t.csv"), "t.csv:3: the record has 2 fields, the header has 3");
  EXPECT_EQ(parse_error("a\n1,2\n").code, ParseErrc::kRagged);
}

TEST(CsvParse, QuoteInsideAnUnquotedField) {
  auto e = parse_error("a,b\n1,2\"x\n");
  EXPECT_EQ(e.code, ParseErrc::kBadQuote);
  EXPECT_EQ(e.row, 2u);
  EXPECT_EQ(e.column, 2u);
}

TEST(CsvParse, TextAfterAClosingQuote) {
  auto e = parse_error("a,b\n\"x\"y,2\n");
  EXPECT_EQ(e.code, ParseErrc::kBadQuote);
  EXPECT_EQ(e.row, 2u);
  EXPECT_EQ(e.column, 1u);
  EXPECT_EQ(e.describe("t.csv"), "t.csv:2:1: text after a closing quote");
}

TEST(CsvParse, UnterminatedQuoteNamesWhereItOpened) {
  auto e = parse_error("a,b\n1,2\n3,\"open\n4,5\n");
  EXPECT_EQ(e.code, ParseErrc::kUnterminatedQuote);
  EXPECT_EQ(e.row, 3u);
  EXPECT_EQ(e.column, 2u);
}

TEST(CsvParse, ShiftJisBytesAreInvalidUtf8) {
  // "宮城県" in Shift_JIS: 0x8B 0x7B 0x8F 0xE9 0x8C 0xA7.
  auto e = parse_error("region,count\nTokyo,5\n\x8B\x7B\x8F\xE9\x8C\xA7,3\n");
  EXPECT_EQ(e.code, ParseErrc::kInvalidUtf8);
  EXPECT_EQ(e.row, 3u);
  EXPECT_EQ(e.column, 1u);
  EXPECT_NE(e.detail.find("0x8B"), std::string::npos);
  EXPECT_NE(e.detail.find("Shift_JIS"), std::string::npos);
  // Inside quotes too, and a truncated sequence at the very end.
  EXPECT_EQ(parse_error("a,b\n1,\"\x82\xA0\"\n").code, ParseErrc::kInvalidUtf8);
  EXPECT_EQ(parse_error("a,b\n1,\xE5\xAE").code, ParseErrc::kInvalidUtf8);
  // An overlong encoding of '/'.
  EXPECT_EQ(parse_error("a\n\xC0\xAF\n").code, ParseErrc::kInvalidUtf8);
}

TEST(CsvParse, BareCarriageReturn) {
  auto e = parse_error("a,b\r1,2\n");
  EXPECT_EQ(e.code, ParseErrc::kBadLineEnd);
  EXPECT_EQ(e.row, 1u);
  EXPECT_EQ(e.column, 2u);
}

TEST(CsvParse, EmptyInput) {
  EXPECT_EQ(parse_error("").code, ParseErrc::kEmpty);
  EXPECT_EQ(parse_error("\xEF\xBB\xBF").code, ParseErrc::kEmpty);
  EXPECT_EQ(parse_error("\n\r\n").code, ParseErrc::kEmpty);
  EXPECT_EQ(parse_error("").describe("t.csv"), "t.csv: no header record");
}

TEST(CsvParse, Limits) {
  ParseLimits limits;
  limits.max_records = 2;
  EXPECT_TRUE(parse("a\n1\n", limits));
  auto e = parse_error("a\n1\n2\n", limits);
  EXPECT_EQ(e.code, ParseErrc::kTooLarge);
  EXPECT_EQ(e.row, 3u);
  limits = {};
  limits.max_fields = 3;
  EXPECT_EQ(parse_error("a,b,c,d\n", limits).code, ParseErrc::kTooLarge);
}

TEST(CsvParse, DocumentSurvivesAMoveOfItself) {
  std::string bytes = "a,b\n\"x\"\"y\",2\n";
  auto doc = parse(bytes);
  ASSERT_TRUE(doc);
  Document moved = std::move(doc).value();
  EXPECT_EQ(moved.field(1, 0), "x\"y");
  EXPECT_EQ(moved.header()[1], "b");
}

TEST(CsvWrite, AppendFieldQuotesOnlyWhenNeeded) {
  std::string out;
  append_field(out, "plain");
  out += ',';
  append_field(out, "a,b");
  out += ',';
  append_field(out, "say \"x\"");
  out += ',';
  append_field(out, "two\nlines");
  out += ',';
  append_field(out, "");
  EXPECT_EQ(out, "plain,\"a,b\",\"say \"\"x\"\"\",\"two\nlines\",");
  const std::string file = "a,b,c,d,e\n" + out + "\n";  // the document views into it
  auto doc = parse_ok(file);
  EXPECT_EQ(doc.field(1, 1), "a,b");
  EXPECT_EQ(doc.field(1, 2), "say \"x\"");
  EXPECT_EQ(doc.field(1, 3), "two\nlines");
}

TEST(CsvWrite, SplitRawKeepsQuotesAndLineEnd) {
  auto raw = split_raw("\"Sendai, Miyagi\",12,\"a\"\"b\",\r\n");
  ASSERT_EQ(raw.fields.size(), 4u);
  EXPECT_EQ(raw.fields[0], "\"Sendai, Miyagi\"");
  EXPECT_EQ(raw.fields[1], "12");
  EXPECT_EQ(raw.fields[2], "\"a\"\"b\"");
  EXPECT_EQ(raw.fields[3], "");
  EXPECT_EQ(raw.line_end, "\r\n");
  auto last = split_raw("x,\"y\nz\"");
  ASSERT_EQ(last.fields.size(), 2u);
  EXPECT_EQ(last.fields[1], "\"y\nz\"");
  EXPECT_EQ(last.line_end, "");
}

TEST(CsvWrite, RawRecordsRebuildTheInputExactly) {
  const std::string bytes =
      "\xEF\xBB\xBFregion,\"note\"\r\n\"宮城県\",\"a,\"\"b\"\"\"\r\nIwate,\"x\ny\"\r\n\r\n";
  auto doc = parse_ok(bytes);
  std::string rebuilt(bytes.data(), doc.raw_record(0).data());
  for (std::size_t r = 0; r < doc.records(); ++r) rebuilt += doc.raw_record(r);
  auto last = doc.raw_record(doc.records() - 1);
  rebuilt += std::string_view(last.data() + last.size(), bytes.data() + bytes.size());
  EXPECT_EQ(rebuilt, bytes);
}

}  // namespace
}  // namespace enclave::exitcontrol::csv
