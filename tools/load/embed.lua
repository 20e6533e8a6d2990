-- wrk script: POST /embed with one sentence per request, cycling through SENTENCES_FILE
-- (one sentence per line; set by tools/load_bench.sh).
local sentences = {}
for line in io.lines(os.getenv("SENTENCES_FILE")) do
  if #line > 0 then sentences[#sentences + 1] = line end
end
local i = 0
local function escape(s)
  return (s:gsub('\\', '\\\\'):gsub('"', '\\"'))
end
request = function()
  i = i % #sentences + 1
  local body = '{"inputs": "' .. escape(sentences[i]) .. '", "truncate": true}'
  return wrk.format("POST", "/embed", { ["Content-Type"] = "application/json" }, body)
end
response = function(status, headers, body)
  if status ~= 200 then
    io.stderr:write("status " .. status .. ": " .. body .. "\n")
  end
end
