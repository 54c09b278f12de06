# unknown escapes yield the character itself
"\q\w\e\0\a\'"
