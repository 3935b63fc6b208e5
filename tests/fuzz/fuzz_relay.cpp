// The relay's state machine on arbitrary traffic. The input is a sequence of records: a
// header byte (bit 0: 1 = from the client, 0 = from the host; bits 1-7: the chunk length - 1)
// then up to 128 bytes fed to that side. Oracles: it never crashes; what it emits toward
// either side is whole PDUs; no Send Data PDU toward the host uses the id of a denied static
// channel; the Connect-Initial the host gets names no denied channel; once failed it stays
// failed and emits nothing; passing the leading fast-path PDUs first
// (pass_fast_path_from_*) relays exactly what feeding everything does.
#include <cstdint>
#include <cstdlib>

#include "gateway/core/gcc.hpp"
#include "gateway/core/mcs.hpp"
#include "gateway/core/relay.hpp"
#include "gateway/core/x224.hpp"

using namespace enclave;
using namespace enclave::gateway;

namespace {

RelayConfig make_config() {
  RelayConfig c;
  c.channels = ChannelPolicy::display_only();
  c.credentials.domain = "ENCLAVE";
  c.credentials.user = "svc-desk";
  c.credentials.password = "pw";
  return c;
}

// Every PDU of `stream`; traps unless it splits into whole PDUs.
template <class F>
void for_each_pdu(ByteSpan stream, F&& f) {
  while (!stream.empty()) {
    auto frame = split_frame(stream);
    if (!frame || !frame->has_value() || (*frame)->size > stream.size()) __builtin_trap();
    f(stream.first((*frame)->size), (*frame)->kind);
    stream = stream.subspan((*frame)->size);
  }
}

void check_to_host(const RelayMachine& m, ByteSpan to_host) {
  const ChannelPolicy policy = ChannelPolicy::display_only();
  for_each_pdu(to_host, [&](ByteSpan pdu, FrameKind kind) {
    if (kind != FrameKind::kTpkt) return;
    auto mcs = decode_data_tpdu(pdu);
    if (!mcs || mcs->empty()) return;
    if ((*mcs)[0] == 0x7F) {
      auto ci = decode_client_connect_initial(pdu);
      if (!ci) return;
      for (const auto& ch : ci->channels) {
        if (!policy.allows_static(ch.name) && ch.name.rfind("_deny", 0) != 0) __builtin_trap();
      }
      return;
    }
    auto domain = decode_domain_pdu(*mcs);
    if (!domain || domain->type != DomainPduType::kSendDataRequest) return;
    for (const auto& c : m.counters()) {
      if (!c.allowed && c.id != 0 && c.id == domain->channel_id) __builtin_trap();
    }
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  RelayMachine machine(make_config());
  // The gateway's way: leading fast-path PDUs pass first. It must relay exactly the same.
  RelayMachine passing(make_config());
  std::size_t pos = 0;
  while (pos < size) {
    const std::uint8_t header = data[pos++];
    const bool from_client = (header & 1) != 0;
    const std::size_t len = std::min<std::size_t>((header >> 1) + 1, size - pos);
    const ByteSpan chunk(data + pos, len);
    pos += len;

    const bool was_failed = machine.failed();
    RelayOutput out;
    auto r = from_client ? machine.from_client(chunk, out) : machine.from_host(chunk, out);
    if (r.has_value() == machine.failed()) __builtin_trap();
    if (!r) (void)r.error().describe();
    if (was_failed && (r || !out.to_host.empty() || !out.to_client.empty())) __builtin_trap();
    check_to_host(machine, out.to_host);
    for_each_pdu(out.to_client, [](ByteSpan, FrameKind) {});

    RelayOutput other;
    const std::size_t n = from_client ? passing.pass_fast_path_from_client(chunk, other)
                                      : passing.pass_fast_path_from_host(chunk, other);
    Bytes same_way(chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
    auto r2 = from_client ? passing.from_client(chunk.subspan(n), other)
                          : passing.from_host(chunk.subspan(n), other);
    Bytes& fed_same_way = from_client ? other.to_host : other.to_client;
    same_way.insert(same_way.end(), fed_same_way.begin(), fed_same_way.end());
    const Bytes& expected_same_way = from_client ? out.to_host : out.to_client;
    const Bytes& other_way = from_client ? other.to_client : other.to_host;
    const Bytes& expected_other_way = from_client ? out.to_client : out.to_host;
    // Even a failing chunk: both relay the PDUs before the failing one.
    if (r2.has_value() != r.has_value() || other_way != expected_other_way ||
        same_way != expected_same_way || other.client_input != out.client_input) {
      __builtin_trap();
    }
  }
  return 0;
}
