-- Argo CD health check for durabletopic.dev/DurableTopic.
-- Maps the operator's kstatus conditions to Argo CD health:
--   Paused True                                    -> Suspended
--   no status yet, or observedGeneration stale     -> Progressing
--   Stalled True                                   -> Degraded
--   Reconciling True                               -> Progressing
--   Ready True                                     -> Healthy
--   Ready False (not reconciling, e.g. drift that
--   driftPolicy Report leaves alone)               -> Degraded
--   anything else                                  -> Progressing
-- The message is the deciding condition's message.
local hs = {}

local function condition(conditions, wanted)
  for _, c in ipairs(conditions) do
    if c.type == wanted then
      return c
    end
  end
  return nil
end

local function is_true(c)
  return c ~= nil and c.status == "True"
end

local function message_of(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback
end

if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the durable-topic-operator to reconcile this DurableTopic"
  return hs
end

local conditions = obj.status.conditions or {}

local paused = condition(conditions, "Paused")
if is_true(paused) then
  hs.status = "Suspended"
  hs.message = message_of(paused, "Reconciliation is paused")
  return hs
end

local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end
local observed = obj.status.observedGeneration
if observed == nil or (generation ~= nil and observed ~= generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the durable-topic-operator to observe generation " .. tostring(generation)
  return hs
end

local stalled = condition(conditions, "Stalled")
if is_true(stalled) then
  hs.status = "Degraded"
  hs.message = message_of(stalled, "Reconciliation is stalled")
  return hs
end

local reconciling = condition(conditions, "Reconciling")
if is_true(reconciling) then
  hs.status = "Progressing"
  hs.message = message_of(reconciling, "Reconciling")
  return hs
end

local ready = condition(conditions, "Ready")
if is_true(ready) then
  hs.status = "Healthy"
  hs.message = message_of(ready, "Ready")
  return hs
end
if ready ~= nil and ready.status == "False" then
  hs.status = "Degraded"
  hs.message = message_of(ready, "Not ready")
  return hs
end

hs.status = "Progressing"
hs.message = message_of(ready, "Waiting for the Ready condition")
return hs
