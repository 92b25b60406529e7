#pragma once
// Short children's stories in the vocabulary stories260K was trained on, for calibration
// and held-out text in the quant tests.
#include <string>

#include <fmt/format.h>

namespace stepdown::test {

// Stories `first` .. first + count - 1, each a paragraph of about 90 words, different for
// each number.
inline std::string stories(int first, int count) {
  static const char* names[] = {"Tim", "Lily", "Sam", "Anna", "Ben", "Mia", "Tom", "Sue"};
  static const char* things[] = {"ball", "cat", "tree", "boat", "cake", "dog", "toy", "box"};
  static const char* feelings[] = {"happy", "sad", "scared", "excited"};
  static const char* places[] = {"park", "garden", "house", "forest"};
  std::string text;
  for (int v = first; v < first + count; ++v) {
    const char* a = names[v % 8];
    const char* b = names[(v * 3 + 1) % 8];
    const char* thing = things[(v * 5 + 2) % 8];
    const char* place = places[v % 4];
    text += fmt::format("Once upon a time, there was a little girl named {}. She liked to play in the {}. ", a, place);
    text += fmt::format("One day, {} found a big {} under a tree. She was very {}. ", a, thing, feelings[v % 4]);
    text += fmt::format("She ran to her friend {} and said, \"Look at my {}!\" {} smiled and said, \"Can I play "
                        "with it too?\" ",
                        b, thing, b);
    text += fmt::format("They played with the {} all day. When the sun went down, they went home. ", thing);
    text += fmt::format("{} was {} because she had a good friend. The end.\n\n", a, feelings[(v + 1) % 4]);
  }
  return text;
}

}  // namespace stepdown::test
