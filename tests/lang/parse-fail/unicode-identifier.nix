# names are ASCII; a multi-byte character must be quoted ("é"), as in Nix
{ "日本" = 1; é = 2; }
