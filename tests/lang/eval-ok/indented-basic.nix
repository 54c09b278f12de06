# indented string strips common indentation
''
  hello
  world
''
