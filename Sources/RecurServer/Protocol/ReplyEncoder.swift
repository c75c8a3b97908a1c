import NIOCore
import RecurCore
import RecurEngine

/// Writes every line the daemon sends (events, replies, errors, notices) as compact JSON
/// followed by a newline. "id", when the request had one, comes first in every line.
/// Shapes are specified in docs/PROTOCOL.md.
struct ReplyEncoder: Sendable {
    let tokens: TokenTable
    let tokenizer: Tokenizer

    /// For `model`'s vocabulary (which a reloaded model shares).
    init(model: Model) {
        tokens = TokenTable(vocabulary: model.vocabulary)
        tokenizer = Tokenizer(model.vocabulary)
    }

    /// `{"id":..,` or `{` when there is no id.
    private func open(_ id: JSONValue?, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "{"))
        if let id {
            buffer.writeJSONKey("id")
            buffer.writeJSONValue(id)
            buffer.writeInteger(UInt8(ascii: ","))
        }
    }

    private func close(into buffer: inout ByteBuffer) {
        buffer.writeStaticString("}\n")
    }

    /// `{"id":..,"op":"<op>","stream":S` — the common head of replies to stream ops.
    private func replyHead(_ op: StaticString, id: JSONValue?, stream: String?, into buffer: inout ByteBuffer) {
        open(id, into: &buffer)
        buffer.writeJSONKey("op")
        buffer.writeInteger(UInt8(ascii: "\""))
        buffer.writeStaticString(op)
        buffer.writeInteger(UInt8(ascii: "\""))
        if let stream {
            buffer.writeJSONMember("stream", string: stream)
        }
    }

    /// `"next":[{"token":T,"p":P},...]` style list of candidates under `key`.
    private func candidates(_ key: StaticString, _ list: [TokenProbability], into buffer: inout ByteBuffer) {
        buffer.writeJSONKey(key)
        buffer.writeInteger(UInt8(ascii: "["))
        for (i, c) in list.enumerated() {
            buffer.writeStaticString(i == 0 ? "{\"token\":" : ",{\"token\":")
            tokens.writeJSON(c.token, into: &buffer)
            buffer.writeJSONMember("p", float: c.probability)
            buffer.writeInteger(UInt8(ascii: "}"))
        }
        buffer.writeInteger(UInt8(ascii: "]"))
    }

    /// One absorbed token: `{"stream":S,"offset":N,"token":T,"tid":I,"logprob":L,"next":[...]}`,
    /// then `"units":[...]` when the request asked for units.
    /// `quotedStream` is the stream name already written as a JSON string (done once per feed).
    func event(_ event: TokenEvent, id: JSONValue?, quotedStream: ByteBuffer, into buffer: inout ByteBuffer) {
        open(id, into: &buffer)
        buffer.writeJSONKey("stream")
        buffer.writeImmutableBuffer(quotedStream)
        buffer.writeJSONMember("offset", int: event.offset)
        buffer.writeStaticString(",\"token\":")
        tokens.writeJSON(event.token, into: &buffer)
        buffer.writeJSONMember("tid", int: Int(event.token))
        buffer.writeStaticString(",\"logprob\":")
        if let lp = event.logprob { buffer.writeJSONFloat(lp) } else { buffer.writeStaticString("null") }
        buffer.writeInteger(UInt8(ascii: ","))
        candidates("next", event.next, into: &buffer)
        if !event.units.isEmpty {
            buffer.writeStaticString(",\"units\":[")
            for (i, value) in event.units.enumerated() {
                if i > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
                buffer.writeJSONFloat(value)
            }
            buffer.writeInteger(UInt8(ascii: "]"))
        }
        close(into: &buffer)
    }

    /// The stream name as a JSON string, for `event(_:id:quotedStream:into:)`.
    func quoted(_ stream: String) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeJSONString(stream)
        return buffer
    }

    /// The end of a feed: `{"op":"feed","stream":S,"done":true,"tokens":n,"offset":N}`.
    func feedDone(id: JSONValue?, stream: String, tokens count: Int, offset: Int?, into buffer: inout ByteBuffer) {
        replyHead("feed", id: id, stream: stream, into: &buffer)
        buffer.writeStaticString(",\"done\":true,\"tokens\":")
        buffer.writeJSONInt(count)
        if let offset {
            buffer.writeJSONMember("offset", int: offset)
        }
        close(into: &buffer)
    }

    /// `{"op":"predict","stream":S,"text":T,"tokens":[{"token":T1,"p":P1},...]}`.
    func predicted(id: JSONValue?, stream: String, tokens list: [TokenProbability], into buffer: inout ByteBuffer) {
        replyHead("predict", id: id, stream: stream, into: &buffer)
        buffer.writeJSONMember("text", string: tokenizer.decode(list.map(\.token)))
        buffer.writeInteger(UInt8(ascii: ","))
        candidates("tokens", list, into: &buffer)
        close(into: &buffer)
    }

    /// `{"op":"reset"|"end","stream":S,"done":true}`.
    func done(_ op: StaticString, id: JSONValue?, stream: String, into buffer: inout ByteBuffer) {
        replyHead(op, id: id, stream: stream, into: &buffer)
        buffer.writeStaticString(",\"done\":true")
        close(into: &buffer)
    }

    /// `{"op":"fork","stream":S,"into":N,"done":true}`.
    func forked(id: JSONValue?, stream: String, into newName: String, into buffer: inout ByteBuffer) {
        replyHead("fork", id: id, stream: stream, into: &buffer)
        buffer.writeJSONMember("into", string: newName)
        buffer.writeStaticString(",\"done\":true")
        close(into: &buffer)
    }

    /// The members of a stream's info after its name (shared by info and list).
    private func infoMembers(_ info: StreamInfo, into buffer: inout ByteBuffer) {
        buffer.writeJSONMember("offset", int: info.offset)
        buffer.writeJSONMember("scored_tokens", int: info.scoredTokens)
        buffer.writeStaticString(",\"mean_loss\":")
        if let loss = info.meanLoss { buffer.writeJSONDouble(loss) } else { buffer.writeStaticString("null") }
        buffer.writeJSONMember("created", string: Timestamp.iso8601(info.created))
        buffer.writeJSONMember("last_activity", string: Timestamp.iso8601(info.lastActivity))
        buffer.writeJSONMember("pending_bytes", int: info.pendingText)
        buffer.writeJSONMember("owner", int: Int(info.owner))
    }

    /// `{"op":"info","stream":S,"offset":N,"scored_tokens":M,"mean_loss":L,"created":T,"last_activity":T,"pending_bytes":P,"owner":U}`.
    func info(id: JSONValue?, _ info: StreamInfo, into buffer: inout ByteBuffer) {
        replyHead("info", id: id, stream: info.stream, into: &buffer)
        infoMembers(info, into: &buffer)
        close(into: &buffer)
    }

    /// `{"op":"list","streams":[{"stream":S,...info members...},...]}`.
    func list(id: JSONValue?, _ infos: [StreamInfo], into buffer: inout ByteBuffer) {
        replyHead("list", id: id, stream: nil, into: &buffer)
        buffer.writeStaticString(",\"streams\":[")
        for (i, info) in infos.enumerated() {
            buffer.writeStaticString(i == 0 ? "{\"stream\":" : ",{\"stream\":")
            buffer.writeJSONString(info.stream)
            infoMembers(info, into: &buffer)
            buffer.writeInteger(UInt8(ascii: "}"))
        }
        buffer.writeInteger(UInt8(ascii: "]"))
        close(into: &buffer)
    }

    /// `{"op":"stats","streams":..,"tokens":..,"tokens_per_second":..,"steps":..,"mean_batch":..,"uptime":..,"connections":..}`.
    func stats(id: JSONValue?, _ stats: EngineStats, connections: Int, cluster: ClusterStatus? = nil, into buffer: inout ByteBuffer) {
        replyHead("stats", id: id, stream: nil, into: &buffer)
        buffer.writeJSONMember("streams", int: stats.streams)
        buffer.writeJSONMember("tokens", int: stats.tokens)
        buffer.writeJSONMember("tokens_per_second", double: stats.tokensPerSecond)
        buffer.writeJSONMember("steps", int: stats.steps)
        buffer.writeJSONMember("mean_batch", double: stats.meanBatch)
        buffer.writeJSONMember("uptime", double: stats.uptime)
        buffer.writeJSONMember("connections", int: connections)
        if let stored = stats.storedStreams {
            buffer.writeJSONMember("stored_streams", int: stored)
            buffer.writeJSONMember("moved_to_store", int: stats.streamsMovedToStore)
            buffer.writeJSONMember("restored", int: stats.streamsRestored)
            buffer.writeJSONMember("over_bound", int: stats.streamsOverBound)
            buffer.writeJSONMember("store_failures", int: stats.failedMovesToStore)
            buffer.writeJSONMember("replayed_tokens", int: stats.tokensReplayed)
        }
        if let cluster {
            buffer.writeJSONMember("cluster_node", string: cluster.node)
            buffer.writeJSONMember("key_groups", int: cluster.groups)
            buffer.writeJSONMember("forwarded", int: cluster.forwarded)
            buffer.writeJSONMember("groups_handed_off", int: cluster.handedOff)
            buffer.writeJSONMember("groups_taken_over", int: cluster.takenOver)
            buffer.writeJSONMember("groups_lost", int: cluster.lost)
            buffer.writeJSONMember("streams_released", int: stats.streamsReleased)
        }
        close(into: &buffer)
    }

    /// `{"op":"model","cell":..,"nonlinearity":..,"layers":..,"hidden":..,"embedding":..,"vocab_size":..,"tokenizer":..,"unknown":..,"parameters":..,"provenance":{..}}`.
    func modelInfo(id: JSONValue?, model: Model, into buffer: inout ByteBuffer) {
        let c = model.config
        replyHead("model", id: id, stream: nil, into: &buffer)
        buffer.writeJSONMember("cell", string: c.cell.rawValue)
        if c.cell == .rnn {
            buffer.writeJSONMember("nonlinearity", string: c.nonlinearity.rawValue)
        }
        buffer.writeJSONMember("layers", int: c.layers)
        buffer.writeJSONMember("hidden", int: c.hiddenSize)
        buffer.writeJSONMember("embedding", int: c.embeddingSize)
        buffer.writeJSONMember("vocab_size", int: c.vocabularySize)
        buffer.writeJSONMember("tokenizer", string: model.vocabulary.kind.rawValue)
        buffer.writeJSONMember("unknown", string: model.vocabulary.unknownPolicy.rawValue)
        buffer.writeJSONMember("parameters", int: model.parameters.count)
        buffer.writeStaticString(",\"provenance\":{")
        for (i, key) in model.provenance.keys.sorted().enumerated() {
            if i > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
            buffer.writeJSONString(key)
            buffer.writeInteger(UInt8(ascii: ":"))
            buffer.writeJSONString(model.provenance[key]!)
        }
        buffer.writeInteger(UInt8(ascii: "}"))
        close(into: &buffer)
    }

    /// `{"op":"view","url":U,"token":T,"uid":N,"admin":B}`: the live view's address with the
    /// caller's token.
    func view(id: JSONValue?, address: String, token: String, uid: UInt32, admin: Bool, into buffer: inout ByteBuffer) {
        replyHead("view", id: id, stream: nil, into: &buffer)
        buffer.writeJSONMember("url", string: "http://\(address)/?token=\(token)")
        buffer.writeJSONMember("token", string: token)
        buffer.writeJSONMember("uid", int: Int(uid))
        buffer.writeStaticString(admin ? ",\"admin\":true" : ",\"admin\":false")
        close(into: &buffer)
    }

    /// `{"error":{"code":C,"message":M},"id":..}` (the id last, as the issue writes it).
    func error(_ error: ProtocolError, id: JSONValue?, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("{\"error\":{\"code\":")
        buffer.writeJSONString(error.code)
        buffer.writeJSONMember("message", string: error.message)
        buffer.writeInteger(UInt8(ascii: "}"))
        if let id {
            buffer.writeStaticString(",\"id\":")
            buffer.writeJSONValue(id)
        }
        close(into: &buffer)
    }

    /// `{"notice":"expired"|"evicted"|"ended"|"reset","stream":S,"message":M}`.
    func notice(_ notice: StreamNotice, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("{\"notice\":")
        buffer.writeJSONString(notice.kind.rawValue)
        buffer.writeJSONMember("stream", string: notice.stream)
        buffer.writeJSONMember("message", string: notice.message)
        close(into: &buffer)
    }
}
