# $${ and lone $ are literal in indented strings
''
  $${x} $ $$ a$
''
