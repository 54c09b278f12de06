# closing on the last content line gives no trailing newline
''
  a
  b''
