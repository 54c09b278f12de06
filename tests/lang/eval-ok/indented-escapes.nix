# indented string escapes ''' ''$ ''\n ''\t ''\r and ''${
''
  a'''b
  ''${x}
  c''\nd''\te''\rf
  ''$
''
