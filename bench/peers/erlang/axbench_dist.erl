%% Erlang distribution peer of the Axon remote benchmarks: two nodes on
%% loopback (`-name ...@127.0.0.1`, one cookie, default distribution
%% settings: net_ticktime 60 s, dist buffer busy limit 1 MiB).
%%
%% Run through the axbench_erlang wrapper (bench/peers/build.sh writes it),
%% which starts this node as
%%   erl -noshell -name <tag>a@127.0.0.1 -setcookie <cookie> +S N:N -pa DIR
%%       -s axbench_dist main NAME PARAMS...
%% with AXB_TAG (unique per run) and AXB_PIDFILE in the environment, and
%% starts epmd first if none runs (and kills it at the end, then only).
%%
%% The second node (the "echo node") is another `erl` OS process started
%% from here through a port: `-s axbench_dist node <origin>`. It connects to
%% the origin, spawns its server process and reports {ready, OsPid, Server};
%% it halts when the origin node goes down. Its OS pid goes to AXB_PIDFILE so
%% that the wrapper can kill it should this node die first.
%%
%% Workloads (one RESULT line each, a failed check halts with status 1):
%%   remote_pingpong W N: a client process keeps W requests {self(), Ref,
%%     Payload} (Payload: a 32-byte binary) in flight to the server process on
%%     the echo node, which answers {Ref, Payload}; closed loop, one new
%%     request per reply. Every reply is checked: its Ref is the oldest
%%     outstanding one (order holds per pair of processes) and its payload is
%%     the one sent; the count is checked.
%%     RESULT remote_pingpong erlang <wall> <N> <rt/s> rt window=W payload=32
%%   remote_bulk N: N messages {chunk, Seq, Bin} with one 1 MiB binary to the
%%     server; it checks Seq in order and the size, and answers the byte
%%     total after the last one; wall runs from the first send to that answer.
%%     RESULT remote_bulk erlang <wall> <N> <msgs/s> msgs MB_s=<1e6 bytes/s> size=1048576
%%   node_down S: S times: start an echo node, monitor_node/2 it, kill -9 its
%%     OS process and time until {nodedown, Node}. With DETECT=1 in the
%%     environment, once more with SIGSTOP instead (default net_ticktime: 45 to
%%     75 s; waits up to 150 s). The signal is sent by `bash -c 'echo
%%     $EPOCHREALTIME; kill -SIG PID'` (builtins, no fork between the clock
%%     read and the kill); the detection time is os:system_time at the
%%     nodedown minus that clock reading.
%%     RESULT node_down erlang <wall> <S> <S/s> samples kill9_ms=<median> kill9_max_ms=<max>[ sigstop_ms=<ms>]
-module(axbench_dist).
-export([main/1, node/1]).

-define(PAYLOAD_SIZE, 32).
-define(BULK_SIZE, 1048576).
-define(REPLY_TIMEOUT, 30000).
-define(START_TIMEOUT, 60000).

main([Name | Params]) ->
    {Pid, Ref} = spawn_monitor(fun() -> runner(to_list(Name), Params) end),
    receive
        {'DOWN', Ref, process, Pid, normal} ->
            halt(0);
        {'DOWN', Ref, process, Pid, Reason} ->
            io:format(standard_error, "axbench erlang dist: crashed: ~p~n", [Reason]),
            halt(1)
    end;
main([]) ->
    io:format(standard_error, "usage: axbench_dist NAME [PARAMS...]~n", []),
    halt(2).

runner(N, Params) ->
    try
        Ps = [case string:to_integer(to_list(P)) of
                  {I, []} when I > 0 -> I;
                  _ -> fail("bad parameter '~s'", [to_list(P)])
              end || P <- Params],
        run(N, Ps)
    of
        ok -> ok
    catch
        throw:{fail, Msg} ->
            io:format(standard_error, "axbench erlang dist: ~s~n", [Msg]),
            halt(1);
        C:R:St ->
            io:format(standard_error, "axbench erlang dist: ~p:~p~n~p~n", [C, R, St]),
            halt(1)
    end.

to_list(A) when is_atom(A) -> atom_to_list(A);
to_list(L) when is_list(L) -> L.

param(Ps, I, _Def) when length(Ps) >= I -> lists:nth(I, Ps);
param(_, _, Def) -> Def.

fail(Fmt, Args) -> throw({fail, lists:flatten(io_lib:format(Fmt, Args))}).

result(Name, Wall, Ops, Unit, Extra) ->
    io:format("RESULT ~s erlang ~.6f ~b ~.1f ~s~s~n",
              [Name, Wall, Ops, Ops / Wall, Unit, Extra]).

now_s() -> erlang:monotonic_time(nanosecond) / 1.0e9.

run("remote_pingpong", Ps) -> pingpong(param(Ps, 1, 1), param(Ps, 2, 100000));
run("remote_bulk", Ps) -> bulk(param(Ps, 1, 1000));
run("node_down", Ps) -> node_down(param(Ps, 1, 5));
run(Name, _) ->
    io:format(standard_error, "axbench erlang dist: unknown workload '~s'~n", [Name]),
    halt(2).

%% ---- the echo node -----------------------------------------------------------

%% Started with `-s axbench_dist node Origin`.
node([Origin]) ->
    case net_kernel:connect_node(Origin) of
        true -> ok;
        _ -> io:format(standard_error, "echo node: cannot connect to ~p~n", [Origin]), halt(1)
    end,
    monitor_node(Origin, true),
    Server = spawn_opt(fun serve/0, [{message_queue_data, off_heap}]),
    {axb_origin, Origin} ! {ready, node(), os:getpid(), Server},
    receive {nodedown, Origin} -> halt(0) end.

serve() ->
    receive
        {Pid, Ref, P} when is_pid(Pid) ->
            Pid ! {Ref, P},
            serve();
        {bulk, From, N} ->
            sink(From, N, 0, 0),
            serve()
    end.

sink(From, N, N, Total) ->
    From ! {bulk_done, N, Total};
sink(From, N, Seq, Total) ->
    receive
        {chunk, Seq, Bin} when byte_size(Bin) =:= ?BULK_SIZE ->
            sink(From, N, Seq + 1, Total + byte_size(Bin));
        {chunk, S, Bin} ->
            From ! {bulk_bad, Seq, S, byte_size(Bin)}
    end.

%% ---- starting and stopping echo nodes ---------------------------------------

%% Starts an echo node as its own OS process; returns {Node, OsPid, Server}.
start_node(K) ->
    Tag = os:getenv("AXB_TAG", "axb" ++ os:getpid()),
    Name = Tag ++ "b" ++ integer_to_list(K) ++ "@127.0.0.1",
    Erl = case os:find_executable("erl") of
              false -> fail("erl not found", []);
              E -> E
          end,
    Sched = integer_to_list(erlang:system_info(schedulers)),
    Args = ["-noshell", "-name", Name, "-setcookie", atom_to_list(erlang:get_cookie()),
            "+S", Sched ++ ":" ++ Sched, "-pa", filename:dirname(code:which(?MODULE)),
            "-s", "axbench_dist", "node", atom_to_list(node())],
    catch register(axb_origin, self()),
    %% The port's owner forwards whatever the node prints to stderr.
    spawn(fun() ->
                  Port = open_port({spawn_executable, Erl},
                                   [{args, Args}, exit_status, stderr_to_stdout, binary]),
                  keeper(Port)
          end),
    receive
        {ready, Node, OsPid, Server} ->
            case os:getenv("AXB_PIDFILE") of
                false -> ok;
                F -> file:write_file(F, OsPid ++ "\n", [append])
            end,
            {Node, OsPid, Server}
    after ?START_TIMEOUT ->
            fail("echo node ~s did not start within ~b ms", [Name, ?START_TIMEOUT])
    end.

keeper(Port) ->
    receive
        {Port, {data, D}} -> io:format(standard_error, "echo node: ~s", [D]), keeper(Port);
        {Port, {exit_status, _}} -> ok
    end.

%% Stops an echo node: it halts when this node disconnects from it.
stop_node(Node) ->
    monitor_node(Node, true),
    erlang:disconnect_node(Node),
    receive {nodedown, Node} -> ok after 10000 -> ok end.

%% ---- remote_pingpong -------------------------------------------------------------

pingpong(W, N) ->
    {Node, _OsPid, Server} = start_node(1),
    P = list_to_binary([C rem 256 || C <- lists:seq(1, ?PAYLOAD_SIZE)]),
    T0 = now_s(),
    First = min(W, N),
    Q = lists:foldl(fun(_, Acc) ->
                            R = make_ref(),
                            Server ! {self(), R, P},
                            queue:in(R, Acc)
                    end, queue:new(), lists:seq(1, First)),
    Got = pp_loop(Server, P, Q, First, 0, N),
    Wall = now_s() - T0,
    Got =:= N orelse fail("remote_pingpong: ~b replies, expected ~b", [Got, N]),
    stop_node(Node),
    result("remote_pingpong", Wall, N, "rt",
           io_lib:format(" window=~b payload=~b", [W, ?PAYLOAD_SIZE])).

pp_loop(_Server, _P, _Q, _Sent, N, N) -> N;
pp_loop(Server, P, Q, Sent, Got, N) ->
    {{value, Ref}, Q1} = queue:out(Q),
    receive
        {R, P2} when is_reference(R) ->
            R =:= Ref orelse fail("remote_pingpong: reply ~b out of order", [Got]),
            P2 =:= P orelse fail("remote_pingpong: reply ~b: payload corrupted", [Got]),
            if Sent < N ->
                    R2 = make_ref(),
                    Server ! {self(), R2, P},
                    pp_loop(Server, P, queue:in(R2, Q1), Sent + 1, Got + 1, N);
               true ->
                    pp_loop(Server, P, Q1, Sent, Got + 1, N)
            end
    after ?REPLY_TIMEOUT ->
            fail("remote_pingpong: no reply for ~b ms after ~b replies", [?REPLY_TIMEOUT, Got])
    end.

%% ---- remote_bulk -----------------------------------------------------------------

bulk(N) ->
    {Node, _OsPid, Server} = start_node(1),
    Bin = list_to_binary([X rem 251 || X <- lists:seq(1, ?BULK_SIZE)]),
    T0 = now_s(),
    Server ! {bulk, self(), N},
    lists:foreach(fun(Seq) -> Server ! {chunk, Seq, Bin} end, lists:seq(0, N - 1)),
    receive
        {bulk_done, N, Total} ->
            Wall = now_s() - T0,
            Total =:= N * ?BULK_SIZE orelse fail("remote_bulk: ~b bytes, expected ~b", [Total, N * ?BULK_SIZE]),
            stop_node(Node),
            result("remote_bulk", Wall, N, "msgs",
                   io_lib:format(" MB_s=~.1f size=~b", [Total / 1.0e6 / Wall, ?BULK_SIZE]));
        {bulk_bad, Seq, S, Size} ->
            fail("remote_bulk: message ~b arrived as ~b with ~b bytes", [Seq, S, Size])
    after 300000 ->
            fail("remote_bulk: no answer", [])
    end.

%% ---- node_down -------------------------------------------------------------------

node_down(S) ->
    Ms = lists:sort([detect(K, "KILL", 10000) || K <- lists:seq(1, S)]),
    Wall = lists:sum(Ms) / 1000,
    Stop = case os:getenv("DETECT") of
               "1" -> io_lib:format(" sigstop_ms=~.1f", [detect(S + 1, "STOP", 150000)]);
               _ -> ""
           end,
    result("node_down", Wall, S, "samples",
           io_lib:format(" kill9_ms=~.3f kill9_max_ms=~.3f~s",
                         [lists:nth((S + 1) div 2, Ms), lists:last(Ms), Stop])).

%% Starts an echo node, sends it SIG and returns the ms until nodedown.
detect(K, Sig, Limit) ->
    {Node, OsPid, Server} = start_node(K),
    %% one round trip: the connection is up and the node is serving
    R = make_ref(),
    Server ! {self(), R, <<"x">>},
    receive {R, <<"x">>} -> ok after ?REPLY_TIMEOUT -> fail("node_down: no answer", []) end,
    monitor_node(Node, true),
    Bash = case os:find_executable("bash") of
               false -> fail("bash not found", []);
               B -> B
           end,
    Port = open_port({spawn_executable, Bash},
                     [{args, ["-c", "echo $EPOCHREALTIME; kill -" ++ Sig ++ " " ++ OsPid]},
                      {env, [{"LC_ALL", "C"}]}, exit_status, binary, {line, 64}]),
    TKill = kill_time(Port, undefined),
    Result =
        receive
            {nodedown, Node} ->
                (os:system_time(microsecond) - TKill) / 1000
        after Limit ->
                fail("node_down: no nodedown within ~b ms of SIG~s", [Limit, Sig])
        end,
    %% a stopped node is killed now (SIGKILL ends a stopped process too)
    Sig =:= "KILL" orelse os:cmd("kill -9 " ++ OsPid),
    Result.

kill_time(Port, T) ->
    receive
        {Port, {data, {eol, Line}}} ->
            [Sec, Frac] = string:split(binary_to_list(Line), "."),
            Us = list_to_integer(Sec) * 1000000 + list_to_integer(lists:flatten(string:pad(Frac, 6, trailing, $0))),
            kill_time(Port, Us);
        {Port, {exit_status, 0}} when T =/= undefined -> T;
        {Port, {exit_status, St}} -> fail("node_down: kill exited with ~b", [St])
    after 10000 -> fail("node_down: kill did not finish", [])
    end.
