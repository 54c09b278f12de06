# helper: a function returning a service description
{ name, port ? 8080 }:
{
  inherit name port;
  url = "http://${name}:${toString port}";
}
