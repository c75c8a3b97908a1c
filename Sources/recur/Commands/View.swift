import ArgumentParser
import RecurCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `recur view`: the URL of the daemon's live view, with a token for the caller's own user.
struct View: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "view",
        abstract: "Print the URL of recurd's live view of streams, with a token for your user.",
        discussion: """
            Asks the daemon over its Unix socket (which tells it your uid, as for every \
            request) for a live-view token, and prints the URL to open in a browser: \
            http://ADDRESS/?token=TOKEN, ADDRESS being where 'recurd --http' listens. The page \
            lists the streams your user may see (its own; every stream for root and the \
            daemon's --admin-group) and shows one live: its text coloured by surprisal or rank, \
            the top predictions on hover, a rolling bits-per-token chart and a heat map of hidden \
            units (docs/OBSERVABILITY.md, "Live view"). The token stays valid until the daemon \
            restarts; treat it like a password (it shows your streams' text). The page keeps it \
            in a cookie and drops it from the address bar. Fails when the daemon runs without --http.
            """)

    @OptionGroup var daemonSocket: DaemonSocketOption

    @Option(help: ArgumentHelp("Open this stream when the page loads (added to the URL as ?stream=).", valueName: "name"))
    var stream: String?

    @Flag(help: "Print the daemon's reply (JSON: url, token, uid, admin) instead of the URL.")
    var json = false

    func validate() throws {
        if let stream, stream.isEmpty { throw ValidationError("--stream must name a stream") }
    }

    func run() throws {
        let connection = try DaemonConnection(path: daemonSocket.path)
        try connection.send("{\"op\":\"view\"}\n")
        var line: [UInt8]?
        while line == nil {
            line = connection.nextLine()
            if line == nil, try !connection.fill() {
                line = connection.pendingLineAtClose()
                if line == nil { throw CLIError("recurd closed the connection without answering") }
            }
        }
        let reply: JSONValue
        do {
            reply = try JSONValue.parse(line!)
        } catch {
            throw CLIError("recurd answered something that is not JSON: \(error)")
        }
        if let error = reply["error"] {
            throw CLIError("recurd refused: \(error["message"]?.stringValue ?? "\(error)")")
        }
        guard var url = reply["url"]?.stringValue else { throw CLIError("recurd's reply has no url: \(String(decoding: line!, as: UTF8.self))") }
        if json {
            print(String(decoding: line!, as: UTF8.self))
            return
        }
        if let stream {
            let allowed = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8)
            let escaped = stream.utf8.map { allowed.contains($0) ? String(UnicodeScalar($0)) : "%" + String($0, radix: 16, uppercase: true).leftPadded }.joined()
            url += "&stream=" + escaped
        }
        print(url)
    }
}

private extension String {
    var leftPadded: String { count == 1 ? "0" + self : self }
}
