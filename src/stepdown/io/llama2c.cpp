#include "stepdown/io/llama2c.h"

#include <cstring>
#include <limits>

#include "stepdown/core/error.h"

namespace stepdown::io {

namespace {

// "ak42" read as a little-endian uint32, the magic of llama2.c's version-1 export.
constexpr uint32_t kAk42Magic = 0x616b3432;
constexpr size_t kLegacyHeaderBytes = 7 * sizeof(int32_t);
constexpr size_t kAk42HeaderBytes = 256;

// Upper bounds that keep every size computation far from overflow; real llama2.c models
// are orders of magnitude smaller.
constexpr int64_t kMaxDim = 1 << 20;
constexpr int64_t kMaxLayers = 1 << 12;
constexpr int64_t kMaxVocab = 1 << 24;
constexpr int64_t kMaxSeqLen = 1 << 24;

struct Header {
  int version = 0;  // 0 for the legacy header, 1 for "ak42"
  size_t header_bytes = 0;
  int64_t dim = 0;         // model width
  int64_t hidden_dim = 0;  // FFN width
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t vocab_size = 0;  // always positive here
  int64_t seq_len = 0;
  bool shared_classifier = true;

  int64_t head_dim() const { return dim / n_heads; }
  int64_t kv_dim() const { return n_kv_heads * head_dim(); }
};

int32_t read_i32(std::span<const std::byte> bytes, size_t offset) {
  int32_t value = 0;
  std::memcpy(&value, bytes.data() + offset, sizeof(value));
  return value;
}

// Reads the seven int32 parameters at `offset`; the legacy header marks an untied
// classifier with a negative vocab_size.
void read_params(std::span<const std::byte> bytes, size_t offset, Header& h, bool legacy) {
  h.dim = read_i32(bytes, offset);
  h.hidden_dim = read_i32(bytes, offset + 4);
  h.n_layers = read_i32(bytes, offset + 8);
  h.n_heads = read_i32(bytes, offset + 12);
  h.n_kv_heads = read_i32(bytes, offset + 16);
  h.vocab_size = read_i32(bytes, offset + 20);
  h.seq_len = read_i32(bytes, offset + 24);
  if (legacy) {
    h.shared_classifier = h.vocab_size > 0;
    if (h.vocab_size < 0) h.vocab_size = -h.vocab_size;
  }
}

// The first field that makes the header implausible, as "field: expected ..., found ...",
// or an empty string when every field is plausible.
std::string find_header_problem(const Header& h) {
  auto check = [](std::string_view field, int64_t value, int64_t max) -> std::string {
    if (value <= 0 || value > max) return fmt::format("{}: expected 1..{}, found {}", field, max, value);
    return {};
  };
  for (const auto& [field, value, max] :
       {std::tuple<std::string_view, int64_t, int64_t>{"dim", h.dim, kMaxDim},
        {"hidden_dim", h.hidden_dim, kMaxDim},
        {"n_layers", h.n_layers, kMaxLayers},
        {"n_heads", h.n_heads, kMaxDim},
        {"n_kv_heads", h.n_kv_heads, kMaxDim},
        {"vocab_size", h.vocab_size, kMaxVocab},
        {"seq_len", h.seq_len, kMaxSeqLen}}) {
    std::string problem = check(field, value, max);
    if (!problem.empty()) return problem;
  }
  if (h.dim % h.n_heads != 0) {
    return fmt::format("n_heads: expected a divisor of dim {}, found {}", h.dim, h.n_heads);
  }
  if (h.n_kv_heads > h.n_heads || h.n_heads % h.n_kv_heads != 0) {
    return fmt::format("n_kv_heads: expected a divisor of n_heads {}, found {}", h.n_heads, h.n_kv_heads);
  }
  if (h.head_dim() % 2 != 0) {
    return fmt::format("dim / n_heads: expected an even head size for RoPE, found {}", h.head_dim());
  }
  return {};
}

bool parse_header(std::span<const std::byte> head, Header& h) {
  if (head.size() >= 4 && static_cast<uint32_t>(read_i32(head, 0)) == kAk42Magic) {
    if (head.size() < 4 + 4 + kLegacyHeaderBytes + 1) return false;
    h.version = read_i32(head, 4);
    h.header_bytes = kAk42HeaderBytes;
    read_params(head, 8, h, /*legacy=*/false);
    h.shared_classifier = static_cast<uint8_t>(head[8 + kLegacyHeaderBytes]) != 0;
    return true;
  }
  if (head.size() < kLegacyHeaderBytes) return false;
  h.version = 0;
  h.header_bytes = kLegacyHeaderBytes;
  read_params(head, 0, h, /*legacy=*/true);
  return true;
}

// Number of float32 values after the header, in file order.
int64_t weight_floats(const Header& h) {
  const int64_t layer = 2 * h.dim                       // rms_att, rms_ffn
                        + 2 * h.dim * h.dim             // wq, wo
                        + 2 * h.kv_dim() * h.dim        // wk, wv
                        + 3 * h.hidden_dim * h.dim;     // w1, w2, w3
  int64_t total = h.vocab_size * h.dim + h.n_layers * layer + h.dim;
  if (h.version == 0) total += h.seq_len * h.head_dim();  // freq_cis_real and freq_cis_imag
  if (!h.shared_classifier) total += h.vocab_size * h.dim;
  return total;
}

// Hands out consecutive fp32 tensors from the mapped weights.
class WeightCursor {
 public:
  WeightCursor(const MappedFile& file, size_t offset) : file_(file), offset_(offset) {}

  TensorView take(std::string name, std::vector<int64_t> shape) {
    TensorView view;
    view.name = std::move(name);
    view.dtype = DType::F32;
    view.shape = std::move(shape);
    view.nbytes = static_cast<size_t>(view.numel()) * sizeof(float);
    if (offset_ + view.nbytes > file_.size()) {
      raise<FormatError>("{}: tensor '{}' at offset {} needs {} bytes, but the file has {}", file_.path().string(),
                         view.name, offset_, view.nbytes, file_.size());
    }
    view.data = file_.data() + offset_;
    offset_ += view.nbytes;
    return view;
  }

  // One tensor per layer, stored back to back: "blk.{i}.{suffix}".
  void take_layers(std::vector<TensorView>& out, int64_t n_layers, std::string_view suffix,
                   const std::vector<int64_t>& shape) {
    for (int64_t i = 0; i < n_layers; ++i) out.push_back(take(fmt::format("blk.{}.{}", i, suffix), shape));
  }

  void skip(size_t bytes) { offset_ += bytes; }
  size_t offset() const { return offset_; }

 private:
  const MappedFile& file_;
  size_t offset_;
};

void fill_metadata(const Header& h, Metadata& m) {
  m.set_string("general.architecture", "llama");
  m.set_u32("llama.context_length", static_cast<uint32_t>(h.seq_len));
  m.set_u32("llama.embedding_length", static_cast<uint32_t>(h.dim));
  m.set_u32("llama.feed_forward_length", static_cast<uint32_t>(h.hidden_dim));
  m.set_u32("llama.block_count", static_cast<uint32_t>(h.n_layers));
  m.set_u32("llama.attention.head_count", static_cast<uint32_t>(h.n_heads));
  m.set_u32("llama.attention.head_count_kv", static_cast<uint32_t>(h.n_kv_heads));
  m.set_u32("llama.rope.dimension_count", static_cast<uint32_t>(h.head_dim()));
  m.set_u32("llama.vocab_size", static_cast<uint32_t>(h.vocab_size));
  // llama2.c's run.c hard-codes both constants; the checkpoint does not store them.
  m.set_f32("llama.rope.freq_base", 10000.0f);
  m.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  m.set_string(std::string(kRopeLayoutKey), "interleaved");
}

}  // namespace

bool looks_like_llama2c(std::span<const std::byte> head) {
  Header h;
  if (!parse_header(head, h)) return false;
  if (h.header_bytes == kAk42HeaderBytes) return true;  // the magic alone identifies it
  return find_header_problem(h).empty();
}

ModelFile open_llama2c(const std::filesystem::path& path) { return open_llama2c(std::make_shared<MappedFile>(path)); }

ModelFile open_llama2c(std::shared_ptr<MappedFile> file) {
  const std::filesystem::path path = file->path();
  const std::string name = path.string();
  Header h;
  if (!parse_header(file->bytes(), h)) {
    raise<FormatError>("{}: llama2.c header: expected at least {} bytes, found a file of {}", name,
                       kLegacyHeaderBytes, file->size());
  }
  if (h.header_bytes == kAk42HeaderBytes) {
    if (h.version != 1) {
      raise<Unsupported>("{}: llama2.c header field 'version' at offset 4: expected 1, found {}", name, h.version);
    }
    if (file->size() < kAk42HeaderBytes) {
      raise<FormatError>("{}: llama2.c version-1 header: expected {} bytes, found a file of {}", name,
                         kAk42HeaderBytes, file->size());
    }
  }
  if (const std::string problem = find_header_problem(h); !problem.empty()) {
    raise<FormatError>("{}: llama2.c header field {}", name, problem);
  }
  const uint64_t expected_size = h.header_bytes + static_cast<uint64_t>(weight_floats(h)) * sizeof(float);
  if (file->size() != expected_size) {
    raise<FormatError>(
        "{}: llama2.c file size: expected {} bytes for dim {}, hidden_dim {}, {} layers, {} kv heads, vocab {}, "
        "seq_len {} ({} classifier), found {}",
        name, expected_size, h.dim, h.hidden_dim, h.n_layers, h.n_kv_heads, h.vocab_size, h.seq_len,
        h.shared_classifier ? "shared" : "separate", file->size());
  }

  ModelFile model;
  model.format = ModelFormat::LLAMA2C;
  model.path = path;
  fill_metadata(h, model.metadata);

  const std::vector<int64_t> norm{h.dim};
  const std::vector<int64_t> q_shape{h.dim, h.dim};       // (out = dim, in = dim)
  const std::vector<int64_t> kv_shape{h.kv_dim(), h.dim};  // (out = kv_dim, in = dim)
  const std::vector<int64_t> up_shape{h.hidden_dim, h.dim};
  const std::vector<int64_t> down_shape{h.dim, h.hidden_dim};
  const std::vector<int64_t> embd_shape{h.vocab_size, h.dim};
  std::vector<TensorView>& t = model.tensors;
  WeightCursor cursor(*file, h.header_bytes);

  if (h.version == 0) {
    // run.c's order: the embedding, then each weight kind for all layers in turn.
    t.push_back(cursor.take("token_embd.weight", embd_shape));
    cursor.take_layers(t, h.n_layers, "attn_norm.weight", norm);
    cursor.take_layers(t, h.n_layers, "attn_q.weight", q_shape);
    cursor.take_layers(t, h.n_layers, "attn_k.weight", kv_shape);
    cursor.take_layers(t, h.n_layers, "attn_v.weight", kv_shape);
    cursor.take_layers(t, h.n_layers, "attn_output.weight", q_shape);
    cursor.take_layers(t, h.n_layers, "ffn_norm.weight", norm);
    cursor.take_layers(t, h.n_layers, "ffn_gate.weight", up_shape);
    cursor.take_layers(t, h.n_layers, "ffn_down.weight", down_shape);
    cursor.take_layers(t, h.n_layers, "ffn_up.weight", up_shape);
    t.push_back(cursor.take("output_norm.weight", norm));
    // freq_cis_real and freq_cis_imag: a precomputed RoPE table that the forward pass
    // recomputes from freq_base, so it is skipped.
    cursor.skip(static_cast<size_t>(h.seq_len * h.head_dim()) * sizeof(float));
  } else {
    // export.py's version-1 order: all norms first, then the matrices.
    cursor.take_layers(t, h.n_layers, "attn_norm.weight", norm);
    cursor.take_layers(t, h.n_layers, "ffn_norm.weight", norm);
    t.push_back(cursor.take("output_norm.weight", norm));
    t.push_back(cursor.take("token_embd.weight", embd_shape));
    cursor.take_layers(t, h.n_layers, "attn_q.weight", q_shape);
    cursor.take_layers(t, h.n_layers, "attn_k.weight", kv_shape);
    cursor.take_layers(t, h.n_layers, "attn_v.weight", kv_shape);
    cursor.take_layers(t, h.n_layers, "attn_output.weight", q_shape);
    cursor.take_layers(t, h.n_layers, "ffn_gate.weight", up_shape);
    cursor.take_layers(t, h.n_layers, "ffn_down.weight", down_shape);
    cursor.take_layers(t, h.n_layers, "ffn_up.weight", up_shape);
  }
  if (!h.shared_classifier) t.push_back(cursor.take("output.weight", embd_shape));

  model.mappings.push_back(std::move(file));
  return model;
}

}  // namespace stepdown::io
