# UTF-8 text in strings and comments
# héllo ✓
[ "ünïcödé ✓" ''日本語'' ]
